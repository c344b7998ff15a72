import { describe, expect, it } from 'vitest';
import { DispatchError } from '@pgdispatch/core/errors';
import type { ClaimedJob } from '@pgdispatch/core/types';
import { useTestDatabase } from '../testing/database.js';
import { claimOne, insertJob } from '../testing/factories.js';
import { jobGet } from './job-admin.js';
import { jobCompleteMany } from './job-complete.js';
import { jobEnqueueMany } from './job-enqueue.js';
import { jobProgress } from './job-events.js';
import { jobFailMany } from './job-fail.js';
import { jobStepSave, jobStepsLoad } from './job-steps.js';

const db = useTestDatabase();
const LEASE = 30_000;
const ref = (j: ClaimedJob) => ({ id: j.id, leaseToken: j.leaseToken });
async function running(queue: string, n: number): Promise<ClaimedJob[]> {
  const out: ClaimedJob[] = [];
  for (let i = 0; i < n; i++) {
    await insertJob(db.sql, { queue });
    out.push(await claimOne(db.sql, queue, LEASE));
  }
  return out;
}
const invalid = (e: unknown) => e instanceof DispatchError && e.code === 'invalid_request';

describe('values PostgreSQL cannot store are caught per item before the statement', () => {
  it('complete: a NUL result beside a good one — the good job succeeds, the bad one is answered invalid_request and recorded failed, non-retryable', async () => {
    const [good, bad, other] = await running('nul-complete', 3);
    const out = await jobCompleteMany(db.sql, {
      items: [{ ...ref(good!), result: { ok: 1 } }, { ...ref(bad!), result: { body: 'a\u0000b' } }, { ...ref(other!), result: ['x'] }],
    });
    expect(out[0]).toEqual({ id: good!.id, ok: true });
    expect(out[1]).toMatchObject({ id: bad!.id, ok: false, code: 'invalid_request', details: { field: 'result.body', state: 'failed' } });
    expect(out[2]).toEqual({ id: other!.id, ok: true });
    expect((await jobGet(db.sql, { id: good!.id })).result).toEqual({ ok: 1 });
    const row = await jobGet(db.sql, { id: bad!.id });
    expect(row.state).toBe('failed');
    expect(row.result).toBeNull();
    expect(row.lastError).toMatchObject({ name: 'UnstorableResult', retryable: false, details: { field: 'result.body' } });
    expect(row.lastError?.message).toMatch(/result\.body contains U\+0000 \(NUL\) at offset 1/);
  });

  it('complete: lone surrogates, NUL in a key, too-deep nesting and an oversized result are each answered for themselves', async () => {
    const jobs = await running('bad-values', 5);
    let deep: unknown = 1;
    for (let i = 0; i < 1_100; i++) deep = [deep];
    const results = [{ s: '\ud800' }, { ['k\u0000']: 1 }, deep, 'x'.repeat(4_000), 'fine'];
    const out = await jobCompleteMany(db.sql, { items: jobs.map((j, i) => ({ ...ref(j), result: results[i] })), maxResultBytes: 3_000 });
    expect(out.map((o) => (o.ok ? 'ok' : o.code))).toEqual(['invalid_request', 'invalid_request', 'invalid_request', 'payload_too_large', 'ok']);
    expect(out[0]).toMatchObject({ details: { field: 'result.s', problem: expect.stringContaining('lone surrogate U+D800') } });
    expect(out[1]).toMatchObject({ details: { field: 'result (a key)' } });
    expect(out[2]).toMatchObject({ details: { problem: 'is nested deeper than 1000 levels' } });
    for (const j of jobs.slice(0, 4)) expect((await jobGet(db.sql, { id: j.id })).state).toBe('failed');
    expect((await jobGet(db.sql, { id: jobs[4]!.id })).state).toBe('succeeded');
  });

  it('a stale lease with a bad result changes nothing (fencing comes first)', async () => {
    const [job] = await running('bad-stale', 1);
    const out = await jobCompleteMany(db.sql, { items: [{ id: job!.id, leaseToken: '00000000-0000-4000-8000-000000000000', result: '\u0000' }] });
    expect(out).toEqual([{ id: job!.id, ok: false, code: 'lease_lost' }]);
    expect((await jobGet(db.sql, { id: job!.id })).state).toBe('running');
  });

  it('fail: an error holding NUL is replaced by one naming the field, recorded non-retryable; the good failure beside it keeps its retry', async () => {
    const [good, bad] = await running('nul-fail', 2);
    const out = await jobFailMany(db.sql, {
      items: [{ ...ref(good!), error: { message: 'plain' }, retryable: true }, { ...ref(bad!), error: { message: 'bo\u0000om' }, retryable: true }],
    });
    expect(out[0]).toMatchObject({ id: good!.id, ok: true, state: 'retry_waiting' });
    expect(out[1]).toMatchObject({ id: bad!.id, ok: false, code: 'invalid_request', details: { field: 'error.message', state: 'failed' } });
    expect((await jobGet(db.sql, { id: bad!.id })).lastError).toMatchObject({ name: 'UnstorableError', retryable: false, details: { field: 'error.message' } });
  });

  it('step save and progress refuse NUL with invalid_request naming the field and store nothing', async () => {
    const [job] = await running('nul-step', 1);
    await expect(jobStepSave(db.sql, { ...ref(job!), name: 'a', result: { v: '\u0000' } })).rejects.toSatisfy(
      (e: unknown) => invalid(e) && (e as DispatchError).message.includes('result.v'),
    );
    await expect(jobStepSave(db.sql, { ...ref(job!), name: 'n\u0000', result: 1 })).rejects.toSatisfy(invalid);
    await expect(jobProgress(db.sql, { ...ref(job!), data: ['\u0000'] })).rejects.toSatisfy(
      (e: unknown) => invalid(e) && (e as DispatchError).message.includes('data[0]'),
    );
    expect(await jobStepsLoad(db.sql, { id: job!.id })).toEqual({});
    expect((await jobGet(db.sql, { id: job!.id })).state).toBe('running');
  });

  it('enqueue refuses a NUL payload, task or idempotency key naming the item, and writes nothing', async () => {
    const count = async () => (await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where queue = 'nul-enqueue'`)[0]!.n;
    const cases = [{ payload: { x: '\u0000' } }, { task: 't\u0000' }, { idempotencyKey: 'k\u0000' }, { payload: '\udfff' }];
    for (const c of cases) {
      await expect(jobEnqueueMany(db.sql, { items: [{ queue: 'nul-enqueue', task: 't' }, { queue: 'nul-enqueue', task: 't', ...c }] })).rejects.toSatisfy(
        (e: unknown) => invalid(e) && /\(item 1\)/.test((e as DispatchError).message),
      );
    }
    expect(await count()).toBe(0);
  });
});
