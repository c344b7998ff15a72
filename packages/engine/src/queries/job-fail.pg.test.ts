import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../testing/database.js';
import { insertJob, claimOne as claimJob } from '../testing/factories.js';
import { jobCancel, jobGet } from './job-admin.js';
import { jobClaim } from './job-claim.js';
import { jobFail, jobFailMany } from './job-fail.js';
import { queueUpsert } from './queue-admin.js';

const db = useTestDatabase();

const LEASE = 30_000;
const claimOne = (queue: string, leaseMs = 30_000) => claimJob(db.sql, queue, leaseMs);
const dbNow = async () => (await db.sql<{ now: Date }[]>`select now()`)[0]!.now.getTime();
const makeDue = (id: number) => db.sql`update jobs set run_at = now() where id = ${id}`;

describe('jobFail', () => {
  it('schedules retries on the queue backoff policy: run_at = now() + random() × min(max, base·2^(attempt-1))', async () => {
    await queueUpsert(db.sql, { name: 'backoff', backoffBaseMs: 1_000, backoffMaxMs: 5_000, defaultMaxAttempts: 10 });
    const job = await insertJob(db.sql, { queue: 'backoff', maxAttempts: 10 });
    const ceilings = [1_000, 2_000, 4_000, 5_000, 5_000];
    for (const [i, ceiling] of ceilings.entries()) {
      const c = await claimOne('backoff');
      expect(c.attempt).toBe(i + 1);
      const before = await dbNow();
      const out = await jobFail(db.sql, { id: c.id, leaseToken: c.leaseToken, error: { message: `boom ${i}` }, random: () => 0.5 });
      const after = await dbNow();
      expect(out).toMatchObject({ id: job.id, ok: true, state: 'retry_waiting' });
      if (!out.ok || !out.runAt) throw new Error('expected a retry time');
      expect(out.runAt.getTime()).toBeGreaterThanOrEqual(before + ceiling / 2);
      expect(out.runAt.getTime()).toBeLessThanOrEqual(after + ceiling / 2);
      const row = await jobGet(db.sql, { id: job.id });
      expect(row).toMatchObject({ state: 'retry_waiting', finishedAt: null });
      expect(row.lastError).toMatchObject({ message: `boom ${i}`, attempt: i + 1, retryable: true });
      expect(await jobClaim(db.sql, { queues: ['backoff'], limit: 1, leaseMs: LEASE })).toEqual([]); // not due yet
      await makeDue(job.id);
    }
  });

  it('with the default random the retry lands in the full-jitter window [now, now + ceiling]', async () => {
    await queueUpsert(db.sql, { name: 'jitter', backoffBaseMs: 10_000, backoffMaxMs: 60_000 });
    for (let i = 0; i < 10; i++) await insertJob(db.sql, { queue: 'jitter' });
    for (let i = 0; i < 10; i++) {
      const c = await claimOne('jitter');
      const before = await dbNow();
      const out = await jobFail(db.sql, { id: c.id, leaseToken: c.leaseToken, error: { message: 'x' } });
      const after = await dbNow();
      if (!out.ok || !out.runAt) throw new Error('expected a retry time');
      expect(out.runAt.getTime()).toBeGreaterThanOrEqual(before);
      expect(out.runAt.getTime()).toBeLessThanOrEqual(after + 10_000);
    }
  });

  it('fails the job for good once max_attempts are spent', async () => {
    const job = await insertJob(db.sql, { queue: 'spent', maxAttempts: 2 });
    const first = await claimOne('spent');
    expect(await jobFail(db.sql, { id: job.id, leaseToken: first.leaseToken, error: { message: '1' }, random: () => 0 })).toMatchObject({ ok: true, state: 'retry_waiting' });
    const second = await claimOne('spent');
    expect(second.attempt).toBe(2);
    expect(await jobFail(db.sql, { id: job.id, leaseToken: second.leaseToken, error: { message: '2' } })).toEqual({ id: job.id, ok: true, state: 'failed', runAt: null });
    const row = await jobGet(db.sql, { id: job.id });
    expect(row).toMatchObject({ state: 'failed', attempt: 2, lastError: { message: '2', attempt: 2 } });
    expect(row.finishedAt).toBeInstanceOf(Date);
    expect(await jobClaim(db.sql, { queues: ['spent'], limit: 1, leaseMs: LEASE })).toEqual([]);
  });

  it('a non-retryable error fails the job at once, attempts left or not', async () => {
    const job = await insertJob(db.sql, { queue: 'fatal', maxAttempts: 5 });
    const c = await claimOne('fatal');
    const out = await jobFail(db.sql, { id: job.id, leaseToken: c.leaseToken, error: { message: 'bad payload', name: 'ZodError' }, retryable: false });
    expect(out).toEqual({ id: job.id, ok: true, state: 'failed', runAt: null });
    expect((await jobGet(db.sql, { id: job.id })).lastError).toMatchObject({ message: 'bad payload', name: 'ZodError', retryable: false, attempt: 1 });
  });

  it('a failure after a cancel request ends cancelled', async () => {
    const job = await insertJob(db.sql, { queue: 'fail-cancel' });
    const c = await claimOne('fail-cancel');
    await jobCancel(db.sql, { id: job.id });
    expect(await jobFail(db.sql, { id: job.id, leaseToken: c.leaseToken, error: { message: 'aborted' } })).toMatchObject({ ok: true, state: 'cancelled' });
    expect((await jobGet(db.sql, { id: job.id })).finishedAt).toBeInstanceOf(Date);
  });

  it('a batch reports per item: fenced items are lease_lost, the rest are recorded', async () => {
    for (let i = 0; i < 2; i++) await insertJob(db.sql, { queue: 'fail-batch', maxAttempts: 1 });
    const [a, b] = await jobClaim(db.sql, { queues: ['fail-batch'], limit: 2, leaseMs: LEASE });
    const out = await jobFailMany(db.sql, {
      items: [
        { id: a!.id, leaseToken: a!.leaseToken, error: { message: 'a' } },
        { id: b!.id, leaseToken: a!.leaseToken, error: { message: 'b' } },
      ],
    });
    expect(out).toEqual([{ id: a!.id, ok: true, state: 'failed', runAt: null }, { id: b!.id, ok: false, code: 'lease_lost' }]);
    expect((await jobGet(db.sql, { id: b!.id })).state).toBe('running');
    expect(await jobFailMany(db.sql, { items: [] })).toEqual([]);
  });
});
