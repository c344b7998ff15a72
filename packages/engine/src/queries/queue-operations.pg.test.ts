import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../testing/database.js';
import { claimOne, insertJob } from '../testing/factories.js';
import { jobGet, jobRetry } from './job-admin.js';
import { jobBulk, queueRedrive, deadLetterDepths } from './job-bulk.js';
import { jobClaim } from './job-claim.js';
import { jobComplete } from './job-complete.js';
import { jobEnqueueMany } from './job-enqueue.js';
import { jobEventsList } from './job-events.js';
import { jobFail } from './job-fail.js';
import { jobReapExpiredLeases } from './job-maintenance.js';
import { queueUpsert } from './queue-admin.js';

const db = useTestDatabase();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const enqueue = async (queue: string, extra: Record<string, unknown> = {}) => (await jobEnqueueMany(db.sql, { items: [{ queue, task: 't', ...extra }] }))[0]!;

describe('dead letters and redrive', () => {
  it('a job that spends its attempts moves to the dead-letter queue with its id, events and error; redrive sends it back', async () => {
    await queueUpsert(db.sql, { name: 'dl-src', deadLetterQueue: 'dl-dead', defaultMaxAttempts: 1 });
    const { job } = await enqueue('dl-src');
    const c = await claimOne(db.sql, 'dl-src');
    await jobFail(db.sql, { id: c.id, leaseToken: c.leaseToken, error: { message: 'poison' } });
    const dead = await jobGet(db.sql, { id: job.id });
    expect(dead).toMatchObject({ queue: 'dl-dead', state: 'failed', deadLetterFrom: 'dl-src', lastError: { message: 'poison' } });
    const events = await jobEventsList(db.sql, { jobId: job.id });
    expect(events.at(-1)).toMatchObject({ queue: 'dl-src', data: { state: 'failed', deadLetterQueue: 'dl-dead' } });
    expect(await deadLetterDepths(db.sql)).toContainEqual({ queue: 'dl-dead', n: 1 });
    expect(await queueRedrive(db.sql, { name: 'dl-dead' })).toEqual({ count: 1 });
    expect(await jobGet(db.sql, { id: job.id })).toMatchObject({ queue: 'dl-src', state: 'queued', attempt: 0, deadLetterFrom: null });
    expect((await claimOne(db.sql, 'dl-src')).id).toBe(job.id);
    expect(await queueRedrive(db.sql, { name: 'dl-dead' })).toEqual({ count: 0 });
  });

  it('a lease that expires on the last attempt dead-letters too; retryable failures and other queues do not', async () => {
    await queueUpsert(db.sql, { name: 'dl-reap', deadLetterQueue: 'dl-reap-dead' });
    const a = await insertJob(db.sql, { queue: 'dl-reap', maxAttempts: 1 });
    const b = await insertJob(db.sql, { queue: 'dl-reap', maxAttempts: 3 });
    await jobClaim(db.sql, { queues: ['dl-reap'], limit: 2, leaseMs: 1 });
    await sleep(20);
    await jobReapExpiredLeases(db.sql);
    expect(await jobGet(db.sql, { id: a.id })).toMatchObject({ queue: 'dl-reap-dead', state: 'failed', deadLetterFrom: 'dl-reap' });
    expect(await jobGet(db.sql, { id: b.id })).toMatchObject({ queue: 'dl-reap', state: 'retry_waiting', deadLetterFrom: null });
    const c = await insertJob(db.sql, { queue: 'dl-plain', maxAttempts: 1 });
    const cc = await claimOne(db.sql, 'dl-plain');
    await jobFail(db.sql, { id: cc.id, leaseToken: cc.leaseToken, error: { message: 'x' } });
    expect(await jobGet(db.sql, { id: c.id })).toMatchObject({ queue: 'dl-plain', state: 'failed', deadLetterFrom: null });
  });

  it('refuses a queue as its own dead-letter queue', async () => {
    await expect(queueUpsert(db.sql, { name: 'dl-self', deadLetterQueue: 'dl-self' })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(queueUpsert(db.sql, { name: 'dl-self', deadLetterQueue: 'Bad Name' })).rejects.toMatchObject({ code: 'invalid_request' });
  });
});

describe('bulk operations by filter', () => {
  it('retry, cancel and delete touch only matching jobs, at most limit per statement, and answer counts', async () => {
    for (let i = 0; i < 5; i++) await insertJob(db.sql, { queue: 'bulk', state: 'failed', task: 'a' });
    await insertJob(db.sql, { queue: 'bulk', state: 'failed', task: 'b' });
    await insertJob(db.sql, { queue: 'bulk-other', state: 'failed', task: 'a' });
    expect(await jobBulk(db.sql, { op: 'retry', queue: 'bulk', task: 'a', limit: 3 })).toEqual({ count: 3 });
    expect(await jobBulk(db.sql, { op: 'retry', queue: 'bulk', task: 'a', limit: 3 })).toEqual({ count: 2 });
    expect(await jobBulk(db.sql, { op: 'retry', queue: 'bulk', task: 'a' })).toEqual({ count: 0 });
    const states = async (queue: string) => (await db.sql<{ state: string; n: number }[]>`select state, count(*)::int as n from jobs where queue = ${queue} group by state order by state`).map((r) => `${r.state}:${r.n}`);
    expect(await states('bulk')).toEqual(['failed:1', 'queued:5']);
    expect(await states('bulk-other')).toEqual(['failed:1']);
    await claimOne(db.sql, 'bulk');
    expect(await jobBulk(db.sql, { op: 'cancel', queue: 'bulk' })).toEqual({ count: 5 }); // 4 waiting + 1 running (requested)
    expect(await states('bulk')).toEqual(['cancelled:4', 'failed:1', 'running:1']);
    expect(await jobBulk(db.sql, { op: 'cancel', queue: 'bulk' })).toEqual({ count: 0 }); // already requested
    // Deleted jobs take their steps with them; the steps of the jobs left stay.
    await db.sql`insert into job_steps (job_id, name, result, attempt) select id, 's', '1', 1 from jobs where queue = 'bulk'`;
    expect(await jobBulk(db.sql, { op: 'delete', queue: 'bulk', state: 'cancelled' })).toEqual({ count: 4 });
    expect(await states('bulk')).toEqual(['failed:1', 'running:1']);
    const stepsOf = await db.sql<{ state: string }[]>`select j.state from job_steps s left join jobs j on j.id = s.job_id where s.job_id in (select id from jobs where queue = 'bulk') or j.id is null order by 1`;
    expect(stepsOf.map((r) => r.state)).toEqual(['failed', 'running']);
  });

  it('filters by creation time', async () => {
    const old = await insertJob(db.sql, { queue: 'bulk-time', state: 'succeeded' });
    await db.sql`update jobs set created_at = now() - interval '2 days' where id = ${old.id}`;
    await insertJob(db.sql, { queue: 'bulk-time', state: 'succeeded' });
    expect(await jobBulk(db.sql, { op: 'delete', queue: 'bulk-time', createdBefore: new Date(Date.now() - 86_400_000) })).toEqual({ count: 1 });
    await expect(jobGet(db.sql, { id: old.id })).rejects.toMatchObject({ code: 'not_found' });
    expect(await jobBulk(db.sql, { op: 'delete', queue: 'bulk-time', createdAfter: new Date(Date.now() - 60_000) })).toEqual({ count: 1 });
  });

  it.each([
    ['no filter', { op: 'delete' }],
    ['a state the operation does not apply to', { op: 'retry', state: 'queued' }],
    ['deleting running jobs', { op: 'delete', state: 'running' }],
    ['a bad queue name', { op: 'cancel', queue: '../x' }],
    ['a limit over 10000', { op: 'cancel', queue: 'q', limit: 10_001 }],
    ['an invalid date', { op: 'cancel', createdBefore: new Date('nope') }],
  ] as const)('refuses %s as invalid_request', async (_label, params) => {
    await expect(jobBulk(db.sql, params as never)).rejects.toMatchObject({ code: 'invalid_request' });
  });
});

describe('unique while active', () => {
  it('an active job holds its key; once it finished the key is free, unlike an idempotency key', async () => {
    const first = await enqueue('uniq', { uniqueKey: 'report-1' });
    const again = await enqueue('uniq', { uniqueKey: 'report-1' });
    expect(first.created).toBe(true);
    expect(again).toMatchObject({ created: false, job: { id: first.job.id, uniqueKey: 'report-1' } });
    const c = await claimOne(db.sql, 'uniq');
    expect((await enqueue('uniq', { uniqueKey: 'report-1' })).created).toBe(false); // running is active
    await jobComplete(db.sql, { id: c.id, leaseToken: c.leaseToken });
    const next = await enqueue('uniq', { uniqueKey: 'report-1' });
    expect(next.created).toBe(true);
    expect(next.job.id).not.toBe(first.job.id);
    expect((await enqueue('uniq-other', { uniqueKey: 'report-1' })).created).toBe(true); // per queue
  });

  it('one batch with a repeated key creates one job; concurrent enqueues of a key create one', async () => {
    const res = await jobEnqueueMany(db.sql, { items: [{ queue: 'uniq-b', task: 't', uniqueKey: 'k' }, { queue: 'uniq-b', task: 't' }, { queue: 'uniq-b', task: 't', uniqueKey: 'k' }] });
    expect(res.map((r) => r.created)).toEqual([true, true, false]);
    expect(res[2]!.job.id).toBe(res[0]!.job.id);
    const conns = Array.from({ length: 6 }, () => db.connect(1));
    const out = await Promise.all(conns.map((c) => jobEnqueueMany(c, { items: [{ queue: 'uniq-c', task: 't', uniqueKey: 'same' }] })));
    expect(out.filter((o) => o[0]!.created)).toHaveLength(1);
    expect(new Set(out.map((o) => o[0]!.job.id)).size).toBe(1);
  });

  it('retrying a finished job whose key another active job holds is a conflict, and bulk retry skips it', async () => {
    const a = await enqueue('uniq-r', { uniqueKey: 'x', maxAttempts: 1 });
    const c = await claimOne(db.sql, 'uniq-r');
    await jobFail(db.sql, { id: c.id, leaseToken: c.leaseToken, error: { message: 'no' } });
    await enqueue('uniq-r', { uniqueKey: 'x' });
    await expect(jobRetry(db.sql, { id: a.job.id })).rejects.toMatchObject({ code: 'conflict' });
    expect(await jobBulk(db.sql, { op: 'retry', queue: 'uniq-r' })).toEqual({ count: 0 });
  });

  it('refuses both keys at once, and empty or oversized keys', async () => {
    await expect(enqueue('uniq-bad', { uniqueKey: 'a', idempotencyKey: 'b' })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(enqueue('uniq-bad', { uniqueKey: '' })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(enqueue('uniq-bad', { uniqueKey: 'k'.repeat(256) })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(enqueue('uniq-bad', { uniqueKey: 'a\u0000b' })).rejects.toMatchObject({ code: 'invalid_request' });
  });
});

describe('rate limits', () => {
  it('claimers on separate connections never take more than the bucket allows', async () => {
    await queueUpsert(db.sql, { name: 'rl', rateLimit: 10, rateIntervalMs: 1000 });
    await jobEnqueueMany(db.sql, { items: Array.from({ length: 300 }, () => ({ queue: 'rl', task: 't' })) });
    const conns = Array.from({ length: 4 }, () => db.connect(1));
    const claims: number[] = [];
    const limited: string[] = [];
    const started = Date.now();
    const durationMs = 2_500;
    await Promise.all(conns.map(async (c) => {
      while (Date.now() - started < durationMs) {
        const got = await jobClaim(c, { queues: '*', limit: 50, leaseMs: 30_000, onRateLimited: (q) => limited.push(q) });
        for (const j of got) if (j.queue === 'rl') claims.push(Date.now());
        await sleep(20);
      }
    }));
    const elapsed = (Date.now() - started) / 1000;
    // Bucket of 10, refilled at 10/s: at most 10 + 10 × elapsed, whatever the claimers do.
    expect(claims.length).toBeLessThanOrEqual(Math.floor(10 + 10 * elapsed));
    expect(claims.length).toBeGreaterThanOrEqual(Math.floor(10 + 10 * (durationMs / 1000) * 0.7));
    expect(limited.length).toBeGreaterThan(0);
    expect(limited.every((q) => q === 'rl')).toBe(true);
  });

  it('refuses a rate limit or interval out of range', async () => {
    await expect(queueUpsert(db.sql, { name: 'rl-bad', rateLimit: 0 })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(queueUpsert(db.sql, { name: 'rl-bad', rateIntervalMs: 0 })).rejects.toMatchObject({ code: 'invalid_request' });
  });
});
