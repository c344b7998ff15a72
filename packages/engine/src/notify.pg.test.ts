import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './testing/database.js';
import { insertJob } from './testing/factories.js';
import { JOBS_CHANNEL, listenForJobs, type Listener } from './notify.js';
import { jobCancel, jobRetry } from './queries/job-admin.js';
import { jobClaim } from './queries/job-claim.js';
import { jobCompleteMany } from './queries/job-complete.js';
import { jobFailMany } from './queries/job-fail.js';
import { jobEnqueue, jobEnqueueMany } from './queries/job-enqueue.js';
import { jobReapExpiredLeases } from './queries/job-maintenance.js';
import { jobReleaseMany } from './queries/job-release.js';
import { queuePause, queueResume, queueUpsert } from './queries/queue-admin.js';

let db: TestDatabase;
let listener: Listener;
let received: string[] = [];
let reconnects = 0;
const listenPool = () => db.connect(1);

beforeAll(async () => {
  db = await createTestDatabase();
  listener = await listenForJobs(listenPool(), (q) => received.push(q), () => reconnects++);
});
afterAll(async () => {
  await listener.stop();
  await db.drop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits until `pred` holds (notifications arrive asynchronously), up to `ms`. */
async function until(pred: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out waiting for a notification');
    await sleep(10);
  }
}
/** Clears what was received, runs `fn`, then gives stray notifications time to arrive. */
async function collect(fn: () => Promise<unknown>, settleMs = 150): Promise<string[]> {
  received = [];
  await fn();
  await sleep(settleMs);
  return [...received];
}

describe('listenForJobs', () => {
  it('receives the queue name when an enqueue commits, and not before', async () => {
    received = [];
    await db.sql.begin(async (tx) => {
      await jobEnqueue(tx, { queue: 'wake', task: 't' });
      await sleep(200);
      expect(received).toEqual([]);
    });
    await until(() => received.length > 0);
    expect(received).toEqual(['wake']);
  });

  it('a rolled-back enqueue notifies nobody', async () => {
    const got = await collect(() =>
      db.sql
        .begin(async (tx) => {
          await jobEnqueue(tx, { queue: 'rolled-back', task: 't' });
          throw new Error('abort');
        })
        .catch(() => {}),
    );
    expect(got).toEqual([]);
  });

  it('a batch notifies each queue once (payload: the queue name only)', async () => {
    const got = await collect(() =>
      jobEnqueueMany(db.sql, { items: [...Array.from({ length: 20 }, () => ({ queue: 'burst-a', task: 't' })), { queue: 'burst-b', task: 't', payload: { big: 'x'.repeat(9_000) } }] }),
    );
    expect(got.sort()).toEqual(['burst-a', 'burst-b']);
  });

  it('a delayed job does not wake anyone', async () => {
    expect(await collect(() => jobEnqueue(db.sql, { queue: 'later', task: 't', delayMs: 60_000 }))).toEqual([]);
  });

  it('release, retry, resume and the reaper wake the queue again', async () => {
    await insertJob(db.sql, { queue: 'again' });
    const [c] = await jobClaim(db.sql, { queues: ['again'], limit: 1, leaseMs: 30_000 });
    expect(await collect(() => jobReleaseMany(db.sql, { items: [{ id: c!.id, leaseToken: c!.leaseToken }] }))).toEqual(['again']);

    const done = await insertJob(db.sql, { queue: 'again-retry', state: 'failed' });
    expect(await collect(() => jobRetry(db.sql, { id: done.id }))).toEqual(['again-retry']);

    await queueUpsert(db.sql, { name: 'again-resume' });
    await queuePause(db.sql, { name: 'again-resume' });
    expect(await collect(() => queueResume(db.sql, { name: 'again-resume' }))).toEqual(['again-resume']);

    await insertJob(db.sql, { queue: 'again-reap', state: 'running', leaseMs: -1_000 });
    expect(await collect(() => jobReapExpiredLeases(db.sql))).toEqual(['again-reap']);
  });

  it('a completion or failure wakes a queue with a concurrency limit (a slot was freed), not an unlimited one', async () => {
    await collect(() => queueUpsert(db.sql, { name: 'slots', concurrencyLimit: 2 }));
    for (const queue of ['slots', 'slots', 'no-slots', 'no-slots']) await insertJob(db.sql, { queue });
    const claimed = await jobClaim(db.sql, { queues: ['slots', 'no-slots'], limit: 4, leaseMs: 30_000 });
    const of = (queue: string) => claimed.filter((c) => c.queue === queue).map((c) => ({ id: c.id, leaseToken: c.leaseToken }));
    expect(await collect(() => jobCompleteMany(db.sql, { items: [...of('slots').slice(0, 1), ...of('no-slots').slice(0, 1)] }))).toEqual(['slots']);
    const fail = (items: { id: number; leaseToken: string }[]) => jobFailMany(db.sql, { items: items.map((i) => ({ ...i, error: { message: 'x' } })) });
    expect(await collect(() => fail(of('slots').slice(1)))).toEqual(['slots']);
    expect(await collect(() => fail(of('no-slots').slice(1)))).toEqual([]);
  });

  it('a failure or expiry that dead-letters a job wakes the limited queue it ran in, not the dead-letter queue', async () => {
    await collect(() => queueUpsert(db.sql, { name: 'dl-src', concurrencyLimit: 1, deadLetterQueue: 'dl-dead' }));
    await insertJob(db.sql, { queue: 'dl-src' });
    const [c] = await jobClaim(db.sql, { queues: ['dl-src'], limit: 1, leaseMs: 30_000 });
    expect(await collect(() => jobFailMany(db.sql, { items: [{ id: c!.id, leaseToken: c!.leaseToken, error: { message: 'x' }, retryable: false }] }))).toEqual(['dl-src']);
    await insertJob(db.sql, { queue: 'dl-src', state: 'running', attempt: 5, maxAttempts: 5, leaseMs: -1_000 });
    expect(await collect(() => jobReapExpiredLeases(db.sql))).toEqual(['dl-src']);
    const [moved] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where queue = 'dl-dead' and state = 'failed'`;
    expect(moved!.n).toBe(2);
  });

  it('changing a queue\'s limits wakes it; other policy changes do not', async () => {
    await collect(() => queueUpsert(db.sql, { name: 'policy', concurrencyLimit: 1 }));
    expect(await collect(() => queueUpsert(db.sql, { name: 'policy', concurrencyLimit: 3 }))).toEqual(['policy']);
    expect(await collect(() => queueUpsert(db.sql, { name: 'policy', rateLimit: 5 }))).toEqual(['policy']);
    expect(await collect(() => queueUpsert(db.sql, { name: 'policy', backoffBaseMs: 10 }))).toEqual([]);
  });

  it('cancel does not wake anyone', async () => {
    const job = await insertJob(db.sql, { queue: 'quiet' });
    expect(await collect(() => jobCancel(db.sql, { id: job.id }))).toEqual([]);
  });

  it('re-listens after its connection is killed, reports the reconnect, and keeps receiving', async () => {
    const before = reconnects;
    const killed = await db.sql`select pg_terminate_backend(pid) as ok from pg_stat_activity
      where datname = current_database() and query = ${`listen "${JOBS_CHANNEL}"`} and pid <> pg_backend_pid()`;
    expect(killed.length).toBe(1);
    await until(() => reconnects > before, 10_000);
    received = [];
    await jobEnqueue(db.sql, { queue: 'after-reconnect', task: 't' });
    await until(() => received.includes('after-reconnect'));
  });

  it('stop() ends delivery', async () => {
    const got: string[] = [];
    const l = await listenForJobs(listenPool(), (q) => got.push(q));
    await l.stop();
    await jobEnqueue(db.sql, { queue: 'stopped', task: 't' });
    await sleep(150);
    expect(got).toEqual([]);
  });
});
