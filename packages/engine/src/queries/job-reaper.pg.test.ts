import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../testing/database.js';
import { claimOne, insertJob } from '../testing/factories.js';
import { jobClaim } from './job-claim.js';
import { jobComplete } from './job-complete.js';
import { jobFail } from './job-fail.js';
import { jobHeartbeat } from './job-heartbeat.js';
import { jobReapExpiredLeases } from './job-maintenance.js';

// The reaper's ordering rule and the window between a lease's expiry and the reaper's pass
// (docs/architecture.md §4). A lease is expired by moving lease_expires_at into the past on the
// database clock, which is what the passing of LEASE_MS does.
const db = useTestDatabase();

const expire = (id: number) => db.sql`update jobs set lease_expires_at = now() - interval '1 second' where id = ${id}`;
const row = async (id: number) =>
  (await db.sql<{ state: string; runAt: Date; attempt: number; leaseExpiresAt: Date | null; result: unknown }[]>`
    select state, run_at as "runAt", attempt, lease_expires_at as "leaseExpiresAt", result from jobs where id = ${id}`)[0]!;

describe('reaped jobs keep their place in the queue', () => {
  it('a reaped job keeps its run_at and is claimed before the backlog enqueued after it', async () => {
    const early = await insertJob(db.sql, { queue: 'reap-order', runAtOffsetMs: -60_000 });
    const held = await claimOne(db.sql, 'reap-order');
    expect(held.id).toBe(early.id);
    const before = await row(early.id);
    // The backlog that arrived while the job ran: all of it runnable, all of it newer.
    for (let i = 0; i < 20; i++) await insertJob(db.sql, { queue: 'reap-order', runAtOffsetMs: -1_000 });
    await expire(early.id);
    const reaped = await jobReapExpiredLeases(db.sql);
    expect(reaped).toEqual([{ id: early.id, queue: 'reap-order', state: 'retry_waiting' }]);
    expect((await row(early.id)).runAt.getTime()).toBe(before.runAt.getTime());
    const [next] = await jobClaim(db.sql, { queues: ['reap-order'], limit: 1, leaseMs: 30_000 });
    expect(next!.id).toBe(early.id);
    expect(next!.attempt).toBe(2);
  });

  it('also in an all-queues claim', async () => {
    const early = await insertJob(db.sql, { queue: 'reap-order-all', runAtOffsetMs: -3_600_000 });
    await claimOne(db.sql, 'reap-order-all');
    for (let i = 0; i < 5; i++) await insertJob(db.sql, { queue: 'reap-order-other', runAtOffsetMs: -1_000 });
    await expire(early.id);
    await jobReapExpiredLeases(db.sql);
    const [next] = await jobClaim(db.sql, { queues: '*', limit: 1, leaseMs: 30_000 });
    expect(next!.id).toBe(early.id);
  });
});

describe('after a lease expires and before the reaper runs', () => {
  it('the holder may still heartbeat: its lease is extended and the reaper leaves the job alone', async () => {
    await insertJob(db.sql, { queue: 'late-hb' });
    const c = await claimOne(db.sql, 'late-hb');
    await expire(c.id);
    expect(await jobHeartbeat(db.sql, { id: c.id, leaseToken: c.leaseToken, leaseMs: 30_000 })).toMatchObject({ id: c.id, ok: true });
    const [now] = await db.sql<{ now: Date }[]>`select now()`;
    expect((await row(c.id)).leaseExpiresAt!.getTime()).toBeGreaterThan(now!.now.getTime());
    expect(await jobReapExpiredLeases(db.sql)).toEqual([]);
    expect((await row(c.id)).state).toBe('running');
  });

  it('the holder may still complete: the result is stored, no attempt is spent, the reaper finds nothing', async () => {
    await insertJob(db.sql, { queue: 'late-complete' });
    const c = await claimOne(db.sql, 'late-complete');
    await expire(c.id);
    await jobComplete(db.sql, { id: c.id, leaseToken: c.leaseToken, result: { late: true } });
    expect(await row(c.id)).toMatchObject({ state: 'succeeded', attempt: 1, result: { late: true } });
    expect(await jobReapExpiredLeases(db.sql)).toEqual([]);
  });

  it('the holder may still fail: a retryable failure schedules the retry as usual', async () => {
    await insertJob(db.sql, { queue: 'late-fail', maxAttempts: 3 });
    const c = await claimOne(db.sql, 'late-fail');
    await expire(c.id);
    await jobFail(db.sql, { id: c.id, leaseToken: c.leaseToken, error: { message: 'late' }, retryable: true });
    expect((await row(c.id)).state).toBe('retry_waiting');
  });

  it('once the reaper has run, the same writes are lease_lost and change nothing', async () => {
    await insertJob(db.sql, { queue: 'late-reaped' });
    const c = await claimOne(db.sql, 'late-reaped');
    await expire(c.id);
    await jobReapExpiredLeases(db.sql);
    const before = await db.sql`select * from jobs where id = ${c.id}`;
    expect(await jobComplete(db.sql, { id: c.id, leaseToken: c.leaseToken, result: { late: true } })).toMatchObject({ ok: false });
    expect(await jobHeartbeat(db.sql, { id: c.id, leaseToken: c.leaseToken, leaseMs: 30_000 })).toMatchObject({ ok: false });
    expect(await db.sql`select * from jobs where id = ${c.id}`).toEqual(before);
  });
});
