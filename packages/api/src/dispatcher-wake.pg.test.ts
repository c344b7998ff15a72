// Wake-ups of limited queues against a real database. Every dispatcher here polls once a minute,
// so a job that arrives within seconds was woken by what the test did (a completion, a due token,
// an enqueue), not by the poll timer. Bounds are far below the poll interval: they check that the
// wake-up happens at all, not how fast it is.
import type { ClaimedJob } from '@pgdispatch/core/types';
import { silentLogger } from '@pgdispatch/core/log';
import type { Sql } from '@pgdispatch/engine/db';
import { jobCompleteMany } from '@pgdispatch/engine/queries/job-complete';
import { jobFailMany } from '@pgdispatch/engine/queries/job-fail';
import { queueUpsert } from '@pgdispatch/engine/queries/queue-admin';
import { useTestDatabase } from '@pgdispatch/engine/testing/database';
import { claimOne, countByState, insertJob } from '@pgdispatch/engine/testing/factories';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlPlane } from './control-plane.js';
import { Dispatcher, type DispatcherOptions } from './dispatcher.js';
import { Enqueuer } from './enqueue.js';
import { Metrics } from './metrics.js';
import { WorkerPresence } from './worker-presence.js';

const db = useTestDatabase();
const POLL_MS = 60_000;
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(stops.splice(0).map((s) => s()));
});

/**
 * A dispatcher and its control plane, as one api process has them. `listen: false` skips
 * start(): no LISTEN and no poll timer, so only local wake-ups (and new requests) cause claims.
 */
async function apiProcess(opts: { listen?: boolean; pool?: Sql } & Partial<DispatcherOptions> = {}) {
  const sql = opts.pool ?? db.connect(4);
  const metrics = new Metrics();
  const dispatcher = new Dispatcher({ sql, listenSql: sql, leaseMs: 30_000, batchMax: 500, pollIntervalMs: POLL_MS, log: silentLogger, ...opts });
  if (opts.listen !== false) await dispatcher.start();
  stops.push(() => dispatcher.stop());
  const enqueuer = new Enqueuer({ sql, metrics, maxPayloadBytes: 1 << 20, onRunnable: (qs) => dispatcher.wakeQueues(qs) });
  const control = new ControlPlane({ sql, dispatcher, enqueuer, presence: new WorkerPresence(), metrics, leaseMs: 30_000, maxPayloadBytes: 1 << 20 });
  return { sql, dispatcher, enqueuer, control };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runningCount(queue: string): Promise<number> {
  return (await countByState(db.sql, queue)).running ?? 0;
}

/**
 * A worker loop like the runtime's: one long-poll at a time for `max` jobs, each job "runs" for
 * `ms` and is completed through `complete`. Resolves when `total` jobs were completed.
 */
async function work(opts: { dequeue: (max: number) => Promise<ClaimedJob[]>; complete: (job: ClaimedJob) => Promise<unknown>; total: number; ms: number; max: number }): Promise<number[]> {
  const done: number[] = [];
  const running = new Set<Promise<void>>();
  while (done.length + running.size < opts.total) {
    const jobs = await opts.dequeue(opts.max);
    for (const job of jobs) {
      const p: Promise<void> = sleep(opts.ms).then(async () => {
        await opts.complete(job);
        done.push(job.id);
        running.delete(p);
      });
      running.add(p);
    }
  }
  await Promise.all(running);
  return done;
}

describe('limited queues refill on completion, not on the poll', () => {
  it('a queue limited to 1 runs 6 jobs one after another, each completion (local wake) claiming the next', async () => {
    await queueUpsert(db.sql, { name: 'lim-one', concurrencyLimit: 1 });
    const ids: number[] = [];
    for (let i = 0; i < 6; i++) ids.push((await insertJob(db.sql, { queue: 'lim-one' })).id);
    // No LISTEN, no poll: the control plane's completions are the only thing that can wake it.
    const api = await apiProcess({ listen: false });
    let maxRunning = 0;
    const sampler = setInterval(() => void runningCount('lim-one').then((n) => (maxRunning = Math.max(maxRunning, n))), 5);
    const started = Date.now();
    try {
      const done = await work({
        dequeue: (max) => api.control.dequeue({ queues: ['lim-one'], max, waitMs: 20_000 }),
        complete: (job) => api.control.complete({ id: job.id, leaseToken: job.leaseToken }),
        total: 6, ms: 20, max: 4,
      });
      expect(done).toEqual(ids);
    } finally {
      clearInterval(sampler);
    }
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(maxRunning).toBe(1);
    expect(await countByState(db.sql, 'lim-one')).toEqual({ succeeded: 6 });
  });

  it('a failure frees the slot too (the failed job waits for its backoff, the next job runs)', async () => {
    await queueUpsert(db.sql, { name: 'lim-fail', concurrencyLimit: 1, backoffBaseMs: 600_000 });
    const first = await insertJob(db.sql, { queue: 'lim-fail' });
    const second = await insertJob(db.sql, { queue: 'lim-fail' });
    const api = await apiProcess({ listen: false });
    const [claimed] = await api.control.dequeue({ queues: ['lim-fail'], max: 2, waitMs: 5_000 });
    expect(claimed).toMatchObject({ id: first.id });
    const next = api.control.dequeue({ queues: ['lim-fail'], max: 2, waitMs: 20_000 });
    await sleep(100);
    await api.control.fail({ id: claimed!.id, leaseToken: claimed!.leaseToken, error: { message: 'boom' }, retryable: true });
    expect(await next).toMatchObject([{ id: second.id }]);
  });

  it('across two api processes: a completion written by one wakes the other (NOTIFY), and nothing else does', async () => {
    await queueUpsert(db.sql, { name: 'lim-two', concurrencyLimit: 1 });
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) ids.push((await insertJob(db.sql, { queue: 'lim-two' })).id);
    const rounds: number[] = [];
    // A dequeues; B only writes completions (a load balancer sent the worker's results there).
    const a = await apiProcess({ onClaimRound: (n) => rounds.push(n) });
    const b = await apiProcess({ listen: false });
    const done = await work({
      dequeue: (max) => a.control.dequeue({ queues: ['lim-two'], max, waitMs: 20_000 }),
      complete: (job) => b.control.complete({ id: job.id, leaseToken: job.leaseToken }),
      total: 4, ms: 20, max: 3,
    });
    expect(done).toEqual(ids);
    // One claim per job, plus the empty claims of the worker's next long-poll, each at most once
    // per job: a wake that found the queue full did not wake it again.
    expect(rounds.filter((n) => n > 0)).toEqual([1, 1, 1, 1]);
    expect(rounds.length).toBeLessThanOrEqual(4 * 3);
  });

  it('the engine write notifies only queues with a concurrency limit, and names them to onWake', async () => {
    await queueUpsert(db.sql, { name: 'lim-note', concurrencyLimit: 2 });
    for (const queue of ['lim-note', 'plain-note', 'plain-note']) await insertJob(db.sql, { queue });
    const limited = await claimOne(db.sql, 'lim-note');
    const plain = await claimOne(db.sql, 'plain-note');
    const woken: string[][] = [];
    await jobCompleteMany(db.sql, { items: [limited, plain].map((j) => ({ id: j.id, leaseToken: j.leaseToken })), onWake: (qs) => woken.push(qs) });
    expect(woken).toEqual([['lim-note']]);
    // An unlimited queue's failure frees nothing anyone waits for: no wake.
    const other = await claimOne(db.sql, 'plain-note');
    await jobFailMany(db.sql, { items: [{ id: other.id, leaseToken: other.leaseToken, error: { message: 'x' }, retryable: false }], onWake: (qs) => woken.push(qs) });
    expect(woken).toEqual([['lim-note']]);
  });
});

describe('rate-limited queues wake when the next token is due', () => {
  it('the claim after the bucket ran dry happens when a token is due, not on the 60 s poll', async () => {
    // 2 tokens per second: the bucket starts full (2), then one token every 500 ms.
    await queueUpsert(db.sql, { name: 'rated', rateLimit: 2, rateIntervalMs: 1_000 });
    for (let i = 0; i < 4; i++) await insertJob(db.sql, { queue: 'rated' });
    const limited: string[] = [];
    const api = await apiProcess({ onRateLimited: (q) => limited.push(q) });
    expect(await api.control.dequeue({ queues: ['rated'], max: 10, waitMs: 5_000 })).toHaveLength(2);
    const asked = Date.now();
    const third = await api.control.dequeue({ queues: ['rated'], max: 10, waitMs: 20_000 });
    const waited = Date.now() - asked;
    expect(third).toHaveLength(1);
    // The token bucket still decides (no claim before the token), the due token wakes the claim.
    expect(waited).toBeGreaterThanOrEqual(300);
    expect(waited).toBeLessThan(10_000);
    expect(limited.length).toBeGreaterThan(0);
  });
});

describe('a full limited queue does not spin', () => {
  it('with the slot held and jobs waiting, a quiet second costs no claim rounds', async () => {
    await queueUpsert(db.sql, { name: 'full', concurrencyLimit: 1 });
    for (let i = 0; i < 5; i++) await insertJob(db.sql, { queue: 'full' });
    const rounds: number[] = [];
    const api = await apiProcess({ onClaimRound: (n) => rounds.push(n) });
    const [held] = await api.control.dequeue({ queues: ['full'], max: 1, waitMs: 5_000 });
    expect(held).toBeDefined();
    // Three workers wait on the full queue (two task sets: two keys), and another api process
    // enqueues elsewhere meanwhile (NOTIFY on other queues must not wake these keys).
    const waiting = [
      api.control.dequeue({ queues: ['full'], max: 2, waitMs: 20_000 }),
      api.control.dequeue({ queues: ['full'], max: 2, waitMs: 20_000 }),
      api.control.dequeue({ queues: ['full'], tasks: ['t'], max: 2, waitMs: 20_000 }),
    ];
    await sleep(200);
    const before = rounds.length;
    const other = await apiProcess();
    for (let i = 0; i < 5; i++) await other.enqueuer.enqueue([{ queue: 'elsewhere', task: 't' }]);
    await sleep(1_000);
    expect(rounds.length - before).toBe(0);
    // One completion: the slot is refilled once, and the rest stays quiet again.
    await api.control.complete({ id: held!.id, leaseToken: held!.leaseToken });
    const got = await Promise.race(waiting);
    expect(got).toHaveLength(1);
    await sleep(1_000);
    const afterCompletion = rounds.slice(before);
    expect(afterCompletion.filter((n) => n > 0)).toEqual([1]);
    expect(afterCompletion.length).toBeLessThanOrEqual(6);
    expect(await runningCount('full')).toBe(1);
  });
});

describe('local wake after an enqueue commits', () => {
  it('the api that received the enqueue wakes its own dispatcher (no LISTEN, no poll here)', async () => {
    const api = await apiProcess({ listen: false });
    const pending = api.control.dequeue({ queues: ['local-enq'], max: 1, waitMs: 20_000 });
    await sleep(100);
    const [r] = await api.enqueuer.enqueue([{ queue: 'local-enq', task: 't' }]);
    expect(await pending).toMatchObject([{ id: r!.job.id }]);
  });

  it('a delayed job, or one an idempotency key already had, wakes nobody', async () => {
    const woken: string[][] = [];
    const enqueuer = new Enqueuer({ sql: db.sql, metrics: new Metrics(), maxPayloadBytes: 1 << 20, onRunnable: (qs) => woken.push(qs) });
    await enqueuer.enqueue([{ queue: 'local-later', task: 't', delayMs: 60_000 }]);
    expect(woken).toEqual([]);
    await enqueuer.enqueue([{ queue: 'local-key', task: 't', idempotencyKey: 'k' }, { queue: 'local-now', task: 't' }]);
    expect(woken).toEqual([['local-key', 'local-now']]);
    await enqueuer.enqueue([{ queue: 'local-key', task: 't', idempotencyKey: 'k' }]);
    expect(woken).toHaveLength(1);
  });
});

describe('a wake-up that arrives while a claim is in flight', () => {
  it('is not lost: the claim that missed the job does not mark the queue set drained', async () => {
    // The job becomes runnable only after the first claim ran (run_at one second ahead). The
    // wake-up arrives after that claim returned and before the dispatcher looked at its result
    // (onClaimRound runs in between): before, the key was marked drained anyway and the job
    // waited for the poll; no LISTEN and no poll here, so only this wake can deliver it.
    const job = await insertJob(db.sql, { queue: 'inflight', runAtOffsetMs: 1_000 });
    const t0 = Date.now();
    const claims: number[] = [];
    const api = await apiProcess({
      listen: false,
      onClaimRound: (n) => {
        claims.push(n);
        if (claims.length > 1) return;
        while (Date.now() - t0 < 1_500) {
          // Hold the round (synchronously) until the job's run_at has passed.
        }
        api.dispatcher.wake('inflight');
      },
    });
    expect(await api.control.dequeue({ queues: ['inflight'], max: 1, waitMs: 20_000 })).toMatchObject([{ id: job.id }]);
    expect(claims).toEqual([0, 1]);
  });
});
