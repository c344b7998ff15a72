import { describe, expect, it } from 'vitest';
import { DispatchError } from '@pgdispatch/core/errors';
import { useTestDatabase } from '../testing/database.js';
import { insertJob, claimOne as claimJob } from '../testing/factories.js';
import { jobAssertLease, jobCancel, jobGet } from './job-admin.js';
import { jobClaim } from './job-claim.js';
import { jobComplete, jobCompleteMany } from './job-complete.js';
import { jobFail } from './job-fail.js';
import { jobHeartbeat, jobHeartbeatMany } from './job-heartbeat.js';
import { jobReapExpiredLeases } from './job-maintenance.js';
import { jobReleaseMany } from './job-release.js';
import { jobStepSave, jobStepsLoad } from './job-steps.js';

const db = useTestDatabase();

const LEASE = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const claimOne = (queue: string, leaseMs = LEASE) => claimJob(db.sql, queue, leaseMs);
const snapshot = (id: number) => db.sql`select * from jobs where id = ${id}`.then((r) => r[0]);
async function expectLeaseLost(p: Promise<unknown>): Promise<void> {
  await expect(p).rejects.toSatisfy((e: unknown) => e instanceof DispatchError && e.code === 'lease_lost');
}

describe('heartbeat', () => {
  it('extends the lease from the database clock and reports cancel_requested', async () => {
    await insertJob(db.sql, { queue: 'hb' });
    const c = await claimOne('hb', 5_000);
    const [before] = await db.sql<{ now: Date }[]>`select now()`;
    const hb = await jobHeartbeat(db.sql, { id: c.id, leaseToken: c.leaseToken, leaseMs: 60_000 });
    expect(hb).toMatchObject({ id: c.id, ok: true, cancelRequested: false });
    if (!hb.ok) throw new Error('unreachable');
    expect(hb.leaseExpiresAt.getTime()).toBeGreaterThanOrEqual(before!.now.getTime() + 60_000);
    await jobCancel(db.sql, { id: c.id });
    expect(await jobHeartbeat(db.sql, { id: c.id, leaseToken: c.leaseToken, leaseMs: 60_000 })).toMatchObject({ ok: true, cancelRequested: true });
  });

  it('reports per item in a batch: a stale token is lease_lost, the others are extended', async () => {
    await insertJob(db.sql, { queue: 'hb-batch' });
    await insertJob(db.sql, { queue: 'hb-batch' });
    const a = await claimOne('hb-batch');
    const b = await claimOne('hb-batch');
    const out = await jobHeartbeatMany(db.sql, {
      items: [{ id: a.id, leaseToken: a.leaseToken }, { id: b.id, leaseToken: '00000000-0000-4000-8000-000000000000' }],
      leaseMs: LEASE,
    });
    expect(out).toMatchObject([{ id: a.id, ok: true }, { id: b.id, ok: false, code: 'lease_lost' }]);
    expect(await jobHeartbeatMany(db.sql, { items: [], leaseMs: LEASE })).toEqual([]);
  });
});

describe('complete', () => {
  it('marks the job succeeded with its result and clears the lease', async () => {
    await insertJob(db.sql, { queue: 'done' });
    const c = await claimOne('done');
    expect(await jobComplete(db.sql, { id: c.id, leaseToken: c.leaseToken, result: { sent: 3 } })).toEqual({ id: c.id, ok: true });
    const job = await jobGet(db.sql, { id: c.id });
    expect(job).toMatchObject({ state: 'succeeded', result: { sent: 3 }, leaseExpiresAt: null });
    expect(job.finishedAt).toBeInstanceOf(Date);
  });

  it('a completed job cannot be completed twice', async () => {
    await insertJob(db.sql, { queue: 'done-twice' });
    const c = await claimOne('done-twice');
    await jobComplete(db.sql, { id: c.id, leaseToken: c.leaseToken, result: 1 });
    expect(await jobComplete(db.sql, { id: c.id, leaseToken: c.leaseToken, result: 2 })).toEqual({ id: c.id, ok: false, code: 'lease_lost' });
    expect((await jobGet(db.sql, { id: c.id })).result).toBe(1);
  });

  it('a batch completes the held jobs and reports fenced ones without failing the others', async () => {
    for (let i = 0; i < 3; i++) await insertJob(db.sql, { queue: 'done-batch' });
    const [a, b, c] = await jobClaim(db.sql, { queues: ['done-batch'], limit: 3, leaseMs: LEASE });
    const out = await jobCompleteMany(db.sql, {
      items: [
        { id: a!.id, leaseToken: a!.leaseToken, result: 'a' },
        { id: b!.id, leaseToken: c!.leaseToken },
        { id: c!.id, leaseToken: c!.leaseToken },
      ],
    });
    expect(out).toEqual([{ id: a!.id, ok: true }, { id: b!.id, ok: false, code: 'lease_lost' }, { id: c!.id, ok: true }]);
    expect((await snapshot(b!.id))!.state).toBe('running');
    expect((await jobGet(db.sql, { id: c!.id })).result).toBeNull();
    expect(await jobCompleteMany(db.sql, { items: [] })).toEqual([]);
  });
});

describe('expired leases', () => {
  it('an expired lease is reaped, re-claimed with attempt+1, and the old holder is fenced off everywhere', async () => {
    const job = await insertJob(db.sql, { queue: 'expire' });
    const old = await claimOne('expire', 1);
    expect(old.attempt).toBe(1);
    await jobStepSave(db.sql, { id: old.id, leaseToken: old.leaseToken, name: 'first', result: { v: 1 } });
    await sleep(20);
    expect(await jobClaim(db.sql, { queues: ['expire'], limit: 1, leaseMs: LEASE })).toEqual([]); // not until reaped

    const reaped = await jobReapExpiredLeases(db.sql);
    expect(reaped).toContainEqual({ id: job.id, queue: 'expire', state: 'retry_waiting' });
    const reapedRow = await jobGet(db.sql, { id: job.id });
    expect(reapedRow).toMatchObject({ state: 'retry_waiting', attempt: 1 });
    expect(reapedRow.lastError).toMatchObject({ name: 'LeaseExpired', attempt: 1 });

    const fresh = await claimOne('expire');
    expect(fresh).toMatchObject({ id: job.id, attempt: 2 });
    expect(fresh.leaseToken).not.toBe(old.leaseToken);
    const before = await snapshot(job.id);

    const stale = { id: job.id, leaseToken: old.leaseToken };
    expect(await jobComplete(db.sql, { ...stale, result: 'late' })).toEqual({ id: job.id, ok: false, code: 'lease_lost' });
    expect(await jobHeartbeat(db.sql, { ...stale, leaseMs: LEASE })).toEqual({ id: job.id, ok: false, code: 'lease_lost' });
    expect(await jobFail(db.sql, { ...stale, error: { message: 'late' } })).toEqual({ id: job.id, ok: false, code: 'lease_lost' });
    expect(await jobReleaseMany(db.sql, { items: [stale] })).toEqual([{ id: job.id, ok: false, code: 'lease_lost' }]);
    await expectLeaseLost(jobStepSave(db.sql, { ...stale, name: 'second', result: 'late' }));
    await expectLeaseLost(jobAssertLease(db.sql, stale));
    expect(await snapshot(job.id)).toEqual(before);
    expect(await jobStepsLoad(db.sql, { id: job.id })).toEqual({ first: { v: 1 } });

    expect(await jobComplete(db.sql, { id: job.id, leaseToken: fresh.leaseToken })).toEqual({ id: job.id, ok: true });
  });

  it('the reaper fails a job whose attempts are spent and cancels one with a pending cancel', async () => {
    const spent = await insertJob(db.sql, { queue: 'expire-final', state: 'running', attempt: 3, maxAttempts: 3, leaseMs: -1_000 });
    const cancelled = await insertJob(db.sql, { queue: 'expire-final', state: 'running', attempt: 1, leaseMs: -1_000 });
    await jobCancel(db.sql, { id: cancelled.id });
    const live = await insertJob(db.sql, { queue: 'expire-final', state: 'running', leaseMs: 60_000 });
    const reaped = await jobReapExpiredLeases(db.sql);
    expect(reaped).toContainEqual({ id: spent.id, queue: 'expire-final', state: 'failed' });
    expect(reaped).toContainEqual({ id: cancelled.id, queue: 'expire-final', state: 'cancelled' });
    expect(reaped.map((r) => r.id)).not.toContain(live.id);
    expect((await jobGet(db.sql, { id: spent.id })).finishedAt).toBeInstanceOf(Date);
    expect((await jobGet(db.sql, { id: live.id })).state).toBe('running');
  });

  it('the reaper takes at most `limit` jobs per call', async () => {
    for (let i = 0; i < 5; i++) await insertJob(db.sql, { queue: 'expire-limit', state: 'running', leaseMs: -1_000 });
    const first = await jobReapExpiredLeases(db.sql, { limit: 2 });
    expect(first).toHaveLength(2);
    const rest = await jobReapExpiredLeases(db.sql, { limit: 100 });
    expect(rest.filter((r) => r.queue === 'expire-limit')).toHaveLength(3);
  });
});

describe('jobAssertLease', () => {
  it('returns the queue and attempt of a held lease', async () => {
    await insertJob(db.sql, { queue: 'assert' });
    const c = await claimOne('assert');
    expect(await jobAssertLease(db.sql, { id: c.id, leaseToken: c.leaseToken })).toEqual({ queue: 'assert', attempt: 1 });
    await jobComplete(db.sql, { id: c.id, leaseToken: c.leaseToken });
    await expectLeaseLost(jobAssertLease(db.sql, { id: c.id, leaseToken: c.leaseToken }));
  });
});
