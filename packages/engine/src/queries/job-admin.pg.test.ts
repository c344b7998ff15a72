import { describe, expect, it } from 'vitest';
import { DispatchError } from '@pgdispatch/core/errors';
import type { JobState } from '@pgdispatch/core/types';
import { useTestDatabase } from '../testing/database.js';
import { insertJob, claimOne as claimJob } from '../testing/factories.js';
import { jobCancel, jobGet, jobList, jobRetry } from './job-admin.js';
import { jobClaim } from './job-claim.js';
import { jobComplete } from './job-complete.js';
import { jobFail } from './job-fail.js';
import { jobHeartbeat } from './job-heartbeat.js';
import { jobReleaseMany } from './job-release.js';

const db = useTestDatabase();

const LEASE = 30_000;
const claimOne = (queue: string, leaseMs = 30_000) => claimJob(db.sql, queue, leaseMs);
async function caught(p: Promise<unknown>): Promise<DispatchError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(DispatchError);
  return err as DispatchError;
}

describe('jobGet and jobList', () => {
  it('gets a job by id and answers not_found for an unknown id', async () => {
    const job = await insertJob(db.sql, { queue: 'get', payload: { a: [1, 2] } });
    expect(await jobGet(db.sql, { id: job.id })).toEqual(job);
    expect(job.payload).toEqual({ a: [1, 2] });
    const err = await caught(jobGet(db.sql, { id: 999_999 }));
    expect(err.code).toBe('not_found');
  });

  it('lists newest first, filtered by queue, state and task, with a keyset cursor', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push((await insertJob(db.sql, { queue: 'list', task: i % 2 ? 'odd' : 'even' })).id);
    await insertJob(db.sql, { queue: 'list', state: 'failed' });
    await insertJob(db.sql, { queue: 'list-other' });
    const page1 = await jobList(db.sql, { queue: 'list', state: 'queued', limit: 3 });
    expect(page1.jobs.map((j) => j.id)).toEqual([ids[4], ids[3], ids[2]]);
    expect(page1.nextCursor).toBe(ids[2]);
    const page2 = await jobList(db.sql, { queue: 'list', state: 'queued', limit: 3, beforeId: page1.nextCursor! });
    expect(page2).toEqual({ jobs: [expect.objectContaining({ id: ids[1] }), expect.objectContaining({ id: ids[0] })], nextCursor: null });
    expect((await jobList(db.sql, { queue: 'list', task: 'odd' })).jobs.map((j) => j.id)).toEqual([ids[3], ids[1]]);
    expect((await jobList(db.sql, { queue: 'list', state: 'failed' })).jobs).toHaveLength(1);
  });

  it('rejects an unknown state or an invalid queue name', async () => {
    expect((await caught(jobList(db.sql, { state: 'nope' as JobState }))).code).toBe('invalid_request');
    expect((await caught(jobList(db.sql, { queue: '../x' }))).code).toBe('invalid_request');
  });
});

describe('jobCancel', () => {
  it.each(['queued', 'retry_waiting'] as const)('a %s job is cancelled at once', async (state) => {
    const job = await insertJob(db.sql, { queue: 'cancel-wait', state });
    const out = await jobCancel(db.sql, { id: job.id });
    expect(out).toMatchObject({ id: job.id, state: 'cancelled', cancelRequested: false });
    expect(out.finishedAt).toBeInstanceOf(Date);
    expect(await jobClaim(db.sql, { queues: ['cancel-wait'], limit: 5, leaseMs: LEASE })).toEqual([]);
  });

  it('a running job gets cancel_requested, which its holder learns from the next heartbeat', async () => {
    await insertJob(db.sql, { queue: 'cancel-run' });
    const c = await claimOne('cancel-run');
    const out = await jobCancel(db.sql, { id: c.id });
    expect(out).toMatchObject({ state: 'running', cancelRequested: true, finishedAt: null });
    expect(out).not.toHaveProperty('leaseToken'); // an admin answer never carries the holder's token
    expect(await jobHeartbeat(db.sql, { id: c.id, leaseToken: c.leaseToken, leaseMs: LEASE })).toMatchObject({ ok: true, cancelRequested: true });
    expect(await jobFail(db.sql, { id: c.id, leaseToken: c.leaseToken, error: { message: 'aborted' } })).toMatchObject({ ok: true, state: 'cancelled' });
  });

  it('a holder that completes despite a cancel request records succeeded: the work was done', async () => {
    await insertJob(db.sql, { queue: 'cancel-complete' });
    const c = await claimOne('cancel-complete');
    await jobCancel(db.sql, { id: c.id });
    expect(await jobComplete(db.sql, { id: c.id, leaseToken: c.leaseToken, result: 'done' })).toEqual({ id: c.id, ok: true });
    expect(await jobGet(db.sql, { id: c.id })).toMatchObject({ state: 'succeeded', result: 'done' });
  });

  it.each(['succeeded', 'failed', 'cancelled'] as const)('a %s job answers invalid_state naming the state', async (state) => {
    const job = await insertJob(db.sql, { queue: 'cancel-final', state });
    const err = await caught(jobCancel(db.sql, { id: job.id }));
    expect(err.code).toBe('invalid_state');
    expect(err.details).toEqual({ state });
    expect(err.message).toContain(state);
    expect((await jobGet(db.sql, { id: job.id })).updatedAt).toEqual(job.updatedAt);
  });

  it('an unknown job answers not_found', async () => {
    expect((await caught(jobCancel(db.sql, { id: 888_888 }))).code).toBe('not_found');
  });
});

describe('jobRetry', () => {
  it.each(['failed', 'cancelled'] as const)('a %s job starts again: queued now with attempts counted afresh', async (state) => {
    const job = await insertJob(db.sql, { queue: `retry-${state}`, state, attempt: 5, runAtOffsetMs: 3_600_000 });
    const out = await jobRetry(db.sql, { id: job.id });
    expect(out).toMatchObject({ state: 'queued', attempt: 0, finishedAt: null, cancelRequested: false });
    const c = await claimOne(`retry-${state}`);
    expect(c).toMatchObject({ id: job.id, attempt: 1 });
  });

  it.each(['queued', 'running', 'retry_waiting', 'succeeded'] as const)('a %s job answers invalid_state naming the state', async (state) => {
    const job = await insertJob(db.sql, { queue: 'retry-bad', state });
    const err = await caught(jobRetry(db.sql, { id: job.id }));
    expect(err.code).toBe('invalid_state');
    expect(err.details).toEqual({ state });
    expect(err.message).toContain(`is ${state}`);
    expect(await jobGet(db.sql, { id: job.id })).toEqual(job);
  });

  it('an unknown job answers not_found', async () => {
    expect((await caught(jobRetry(db.sql, { id: 777_777 }))).code).toBe('not_found');
  });
});

describe('jobReleaseMany', () => {
  it('returns a running job to queued without spending an attempt', async () => {
    const job = await insertJob(db.sql, { queue: 'release' });
    const c = await claimOne('release');
    expect(c.attempt).toBe(1);
    expect(await jobReleaseMany(db.sql, { items: [{ id: c.id, leaseToken: c.leaseToken }] })).toEqual([{ id: job.id, ok: true }]);
    expect(await jobGet(db.sql, { id: job.id })).toMatchObject({ state: 'queued', attempt: 0, leaseExpiresAt: null });
    const again = await claimOne('release');
    expect(again).toMatchObject({ id: job.id, attempt: 1 });
  });

  it('reports fenced items as lease_lost and releases the rest', async () => {
    for (let i = 0; i < 2; i++) await insertJob(db.sql, { queue: 'release-batch' });
    const [a, b] = await jobClaim(db.sql, { queues: ['release-batch'], limit: 2, leaseMs: LEASE });
    const out = await jobReleaseMany(db.sql, { items: [{ id: a!.id, leaseToken: b!.leaseToken }, { id: b!.id, leaseToken: b!.leaseToken }] });
    expect(out).toEqual([{ id: a!.id, ok: false, code: 'lease_lost' }, { id: b!.id, ok: true }]);
    expect((await jobGet(db.sql, { id: a!.id })).state).toBe('running');
    expect(await jobReleaseMany(db.sql, { items: [] })).toEqual([]);
  });

  it('releasing a job whose cancel was requested ends it cancelled instead of queuing it again', async () => {
    const job = await insertJob(db.sql, { queue: 'release-cancel' });
    const c = await claimOne('release-cancel');
    await jobCancel(db.sql, { id: job.id });
    expect(await jobReleaseMany(db.sql, { items: [{ id: c.id, leaseToken: c.leaseToken }] })).toEqual([{ id: job.id, ok: true }]);
    const row = await jobGet(db.sql, { id: job.id });
    expect(row).toMatchObject({ state: 'cancelled' });
    expect(row.finishedAt).toBeInstanceOf(Date);
    expect(await jobClaim(db.sql, { queues: ['release-cancel'], limit: 1, leaseMs: LEASE })).toEqual([]);
  });
});
