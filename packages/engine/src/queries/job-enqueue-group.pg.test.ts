import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../testing/database.js';
import { claimOne } from '../testing/factories.js';
import { jobComplete } from './job-complete.js';
import { jobEnqueue, jobEnqueueEach, jobEnqueueMany, jobEnqueueManyIds, type EnqueueSettled } from './job-enqueue.js';

// jobEnqueueEach is the group commit of concurrent single enqueues: one statement for the group,
// every item answered as if it had been enqueued alone. jobEnqueueManyIds is jobEnqueueMany with
// narrow rows back.
const db = useTestDatabase();

const xmins = async (ids: number[]) => (await db.sql<{ x: string }[]>`select xmin::text as x from jobs where id = any(${ids}::bigint[])`).map((r) => r.x);
const ok = (s: EnqueueSettled | undefined) => {
  if (!s?.ok) throw new Error(`expected ok, got ${JSON.stringify(s)}`);
  return s.value;
};

describe('jobEnqueueEach', () => {
  it('writes valid items in one transaction and answers invalid ones for themselves, without an item number', async () => {
    const res = await jobEnqueueEach(db.sql, {
      maxPayloadBytes: 64,
      items: [
        { queue: 'each', task: 't', payload: { i: 0 } },
        { queue: 'each', task: 't', payload: { s: 'nul\u0000' } },
        { queue: 'each', task: 't', payload: { i: 2 } },
        { queue: 'each', task: 't', payload: 'x'.repeat(100) },
        { queue: 'each', task: 'nul\u0000task' },
        { queue: 'each', task: 't', priority: 1.5 },
        { queue: 'each', task: 't', payload: { i: 6 } },
      ],
    });
    expect(res.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'invalid_request', 'ok', 'payload_too_large', 'invalid_request', 'invalid_request', 'ok']);
    for (const r of res) if (!r.ok) expect(r.error.message).not.toMatch(/item \d/);
    const jobs = [0, 2, 6].map((i) => ok(res[i]).job);
    expect(jobs.map((j) => j.payload)).toEqual([{ i: 0 }, { i: 2 }, { i: 6 }]);
    expect(new Set(await xmins(jobs.map((j) => j.id))).size).toBe(1); // one statement, one commit
    const [n] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where queue = 'each'`;
    expect(n!.n).toBe(3);
  });

  it('a value the statement itself refuses fails only its item: the others are retried alone and written', async () => {
    // delayMs passes validation (finite, non-negative) but overflows bigint in PostgreSQL (22003):
    // the grouped statement fails, so every item is retried on its own.
    const res = await jobEnqueueEach(db.sql, {
      items: [
        { queue: 'each-refused', task: 't', payload: { i: 0 } },
        { queue: 'each-refused', task: 't', delayMs: 1e20 },
        { queue: 'each-refused', task: 't', payload: { i: 2 } },
      ],
    });
    expect(res.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'invalid_request', 'ok']);
    expect([ok(res[0]).job.payload, ok(res[2]).job.payload]).toEqual([{ i: 0 }, { i: 2 }]);
    const [n] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where queue = 'each-refused'`;
    expect(n!.n).toBe(2);
  });

  it('two items with one idempotency key: the first creates, the second gets that job, as sequentially', async () => {
    const old = await jobEnqueue(db.sql, { queue: 'each-keys', task: 't', idempotencyKey: 'old' });
    const res = (await jobEnqueueEach(db.sql, {
      items: [
        { queue: 'each-keys', task: 't', idempotencyKey: 'k', payload: { n: 1 } },
        { queue: 'each-keys', task: 't', idempotencyKey: 'k', payload: { n: 2 } },
        { queue: 'each-keys', task: 't', idempotencyKey: 'old' },
        { queue: 'each-keys', task: 't', uniqueKey: 'u' },
        { queue: 'each-keys', task: 't', uniqueKey: 'u' },
        { queue: 'each-keys', task: 't' },
      ],
    })).map(ok);
    expect(res.map((r) => r.created)).toEqual([true, false, false, true, false, true]);
    expect(res[1]!.job).toEqual(res[0]!.job);
    expect(res[1]!.job.payload).toEqual({ n: 1 });
    expect(res[2]!.job.id).toBe(old.job.id);
    expect(res[4]!.job.id).toBe(res[3]!.job.id);
  });

  it('a unique key is free again once its job finished, in a group as alone', async () => {
    const first = await jobEnqueue(db.sql, { queue: 'each-unique', task: 't', uniqueKey: 'u' });
    const claimed = await claimOne(db.sql, 'each-unique');
    expect(claimed.id).toBe(first.job.id);
    await jobComplete(db.sql, { id: claimed.id, leaseToken: claimed.leaseToken, result: null });
    const res = (await jobEnqueueEach(db.sql, { items: [{ queue: 'each-unique', task: 't', uniqueKey: 'u' }, { queue: 'each-unique', task: 't', uniqueKey: 'u' }] })).map(ok);
    expect(res.map((r) => r.created)).toEqual([true, false]);
    expect(res[0]!.job.id).not.toBe(first.job.id);
    expect(res[1]!.job.id).toBe(res[0]!.job.id);
  });
});

describe('jobEnqueueManyIds', () => {
  it('writes the same jobs and answers the same ids and created flags as jobEnqueueMany', async () => {
    const items = [
      { queue: 'ids', task: 't', idempotencyKey: 'k', payload: { a: 1 } },
      { queue: 'ids', task: 't', payload: { b: 2 }, priority: 3, maxAttempts: 2 },
      { queue: 'ids', task: 't', idempotencyKey: 'k' },
      { queue: 'ids', task: 't', uniqueKey: 'u' },
    ];
    const first = await jobEnqueueManyIds(db.sql, { items });
    expect(first.map((r) => r.created)).toEqual([true, true, false, true]);
    expect(first[2]!.id).toBe(first[0]!.id);
    const rows = await db.sql<{ id: number; payload: unknown; priority: number; max_attempts: number }[]>`
      select id, payload, priority, max_attempts from jobs where queue = 'ids' order by id`;
    expect(rows).toEqual([
      { id: first[0]!.id, payload: { a: 1 }, priority: 0, max_attempts: 5 },
      { id: first[1]!.id, payload: { b: 2 }, priority: 3, max_attempts: 2 },
      { id: first[3]!.id, payload: {}, priority: 0, max_attempts: 5 },
    ]);
    const full = await jobEnqueueMany(db.sql, { items });
    const ids = await jobEnqueueManyIds(db.sql, { items });
    expect(full.map((r) => r.created)).toEqual([false, true, false, false]);
    expect(ids.map((r) => r.created)).toEqual([false, true, false, false]);
    expect([ids[0]!.id, ids[2]!.id, ids[3]!.id]).toEqual([full[0]!.job.id, full[2]!.job.id, full[3]!.job.id]);
    await expect(jobEnqueueManyIds(db.sql, { items: [{ queue: 'ids', task: 't', delayMs: -1 }, { queue: 'ids', task: 't' }] })).rejects.toMatchObject({ code: 'invalid_request' });
    // runnable: created and due at once (what the statement NOTIFYed for), never for an existing job.
    const wake = await jobEnqueueManyIds(db.sql, { items: [{ queue: 'ids', task: 't' }, { queue: 'ids', task: 't', delayMs: 60_000 }, { queue: 'ids', task: 't', idempotencyKey: 'k' }] });
    expect(wake.map((r) => r.runnable)).toEqual([true, false, false]);
  });
});
