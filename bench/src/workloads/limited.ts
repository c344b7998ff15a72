import { queuePause, queueUpsert } from '@pgdispatch/engine/queries/queue-admin';
import { makeWorkerUtils } from 'graphile-worker';
import { createBenchDb, type BenchDb } from '../lib/pg-target.js';
import { percentile, sleep } from '../lib/stats.js';
import { install as installGraphile, quietLogger, startGraphile } from '../systems/graphile-worker.js';
import { allThroughput } from '../systems/pgdispatch-all.js';
import { installPgdispatch, openEngineEnqueuer, pgdispatchSucceeded } from '../systems/pgdispatch-engine.js';
import { serverPending } from '../systems/pgdispatch-server.js';
import type { BenchContext, RunningWorker, SystemName } from '../systems/types.js';
import { QUEUE, TASK } from '../systems/types.js';
import type { BenchPayload } from '../workers/child.js';

/**
 * A queue with a concurrency limit L and jobs whose handler sleeps `jobMs`: the best a dispatcher
 * can do is L jobs in flight all the time, L / jobMs jobs/s. It shows how fast a limited queue is
 * refilled after a completion (a dispatcher that only refills on its poll runs at about L jobs/s).
 */
export interface LimitedResult {
  /**
   * Steady rate: handler starts after the first L, over the time from the first start to the last
   * (L / jobMs at the ideal). Start-up before the first claim (graphile-worker's run() is called on
   * `go`) is not charged to it. When no refill is seen in the window, `windowRate`.
   */
  rate: number;
  /** Jobs completed in the window per the database (committed), and that over the window's seconds. */
  completed: number;
  windowRate: number;
  enqueued: number;
  seconds: number;
  /** Most handlers running at once (from handler start marks, each lasting jobMs − 2 ms): must be ≤ L. */
  maxConcurrent: number;
  /** Handler end → next start in the freed slot, p50, ms (see refillGapP50). */
  refillGapP50: number;
}

export interface LimitedOptions {
  limit: number;
  seconds: number;
  jobMs: number;
  concurrency: number;
}

export interface LimitedSystem {
  id: string;
  system: SystemName;
  /** The limit this system is measured at (graphile-worker: named queues run serially, so 1). */
  limits(requested: readonly number[]): number[];
  pending(): string | undefined;
  measure(ctx: BenchContext, opts: LimitedOptions): Promise<LimitedResult>;
}

/** Jobs per second at the goal's ideal: L handlers busy all the time. */
export const idealRate = (limit: number, jobMs: number) => (limit * 1000) / jobMs;

/** Enough jobs that even a dispatcher 1.5× faster than the ideal never runs out within the window. */
export const limitedJobs = (o: LimitedOptions) => Math.ceil(1.5 * idealRate(o.limit, o.jobMs) * o.seconds) + o.limit;

/** Most intervals [start, start + lengthMs) open at once. */
export function maxOverlap(starts: readonly number[], lengthMs: number): number {
  const events = starts.flatMap((t) => [[t, 1], [t + lengthMs, -1]] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let max = 0;
  for (const [, d] of events) max = Math.max(max, (open += d));
  return max;
}

const payloads = (n: number, jobMs: number): BenchPayload[] => Array.from({ length: n }, (_, i) => ({ i, m: 1, s: jobMs }));

/** (starts − limit) / (last start − first start), in jobs/s; NaN with too few starts. */
export function steadyRate(starts: readonly number[], limit: number): number {
  if (starts.length <= limit) return Number.NaN;
  const span = Math.max(...starts) - Math.min(...starts);
  return span > 0 ? ((starts.length - limit) * 1000) / span : Number.NaN;
}

/**
 * Refill gap, p50 in ms: with L slots cycling, the (j+L)-th start follows the j-th job's end, so
 * start[j+L] − start[j] − jobMs is the time from a handler's end to the start of the job that took
 * its slot (completion, wake-up, claim, hand-over). 0 at the ideal; ~1000 on a 1 s poll.
 */
export function refillGapP50(starts: readonly number[], limit: number, jobMs: number): number {
  const s = [...starts].sort((a, b) => a - b);
  const gaps: number[] = [];
  for (let j = limit; j < s.length; j++) gaps.push((s[j] as number) - (s[j - limit] as number) - jobMs);
  return percentile(gaps, 50);
}

/** Opens the window on `go`, lets it run `seconds`, then counts completions. */
async function runWindow(w: RunningWorker, completed: () => Promise<number>, o: LimitedOptions, enqueued: number): Promise<LimitedResult> {
  const t0 = performance.now();
  await w.go();
  await sleep(Math.max(0, o.seconds * 1000 - (performance.now() - t0)));
  const done = await completed();
  const seconds = (performance.now() - t0) / 1000;
  const starts = [...w.executor.marks.values()];
  // No refill seen within the window (at most L starts): the window's own rate is all there is.
  const steady = steadyRate(starts, o.limit);
  // Each handler counts as running for jobMs minus 2 ms: a timer may fire up to ~1 ms early (libuv's
  // loop clock has ms resolution), and a refill that follows a completion at once must not look
  // like an overlap. A limit that is really exceeded overlaps by far more.
  const maxConcurrent = maxOverlap(starts, Math.max(1, o.jobMs - 2));
  return { rate: Number.isFinite(steady) ? steady : done / seconds, completed: done, windowRate: done / seconds, enqueued, seconds, maxConcurrent, refillGapP50: refillGapP50(starts, o.limit, o.jobMs) };
}

async function withDb<T>(ctx: BenchContext, label: string, fn: (db: BenchDb) => Promise<T>): Promise<T> {
  const db = await createBenchDb(ctx.target, label);
  try {
    return await fn(db);
  } finally {
    await db.drop();
  }
}

/** pgdispatch `all (throughput)` on a queue created with `concurrencyLimit: L` (queueUpsert, as `PUT /v1/queues/:name` does). */
export const pgdispatchLimited: LimitedSystem = {
  id: 'pgdispatch all (throughput)',
  system: 'pgdispatch',
  limits: (requested) => [...requested],
  pending: serverPending,
  measure: (ctx, o) =>
    withDb(ctx, `limited_pgd_${o.limit}`, async (db) => {
      await installPgdispatch(ctx, db);
      await queueUpsert(db.sql, { name: QUEUE, concurrencyLimit: o.limit });
      await queuePause(db.sql, { name: QUEUE });
      const n = limitedJobs(o);
      const enq = await openEngineEnqueuer(ctx, db);
      try {
        const all = payloads(n, o.jobMs);
        for (let i = 0; i < n; i += 1000) await enq.bulk(all.slice(i, i + 1000));
      } finally {
        await enq.close();
      }
      const w = await allThroughput.start(ctx, db, { concurrency: Math.max(o.concurrency, o.limit) });
      try {
        return await runWindow(w, () => pgdispatchSucceeded(db), o, n);
      } finally {
        await w.stop();
      }
    }),
};

async function graphileSucceeded(db: BenchDb, total: number): Promise<number> {
  // graphile-worker deletes finished jobs; failed ones would stay (none fail here).
  const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from graphile_worker._private_jobs`;
  return total - (r?.n ?? 0);
}

/**
 * graphile-worker has no per-queue concurrency limit; jobs sharing a `queueName` run one at a
 * time, which is a limit of 1. Its best settings for that: no localQueue and its default
 * unbatched completion (`serial` in graphile-worker-proc.ts). Its throughput profile (localQueue
 * 500, completeJobBatchDelay 0) ran the same queue at 0.50–0.66 jobs/s against 1.3–1.4 for
 * `serial` (PostgreSQL 15, 3–4 s windows, 2 December 2026), so it is not measured here.
 */
function graphileLimited(kind: 'serial'): LimitedSystem {
  return {
    id: `graphile-worker (${kind}), queueName`,
    system: 'graphile-worker',
    limits: () => [1],
    pending: () => undefined,
    measure: (ctx, o) =>
      withDb(ctx, `limited_gw_${kind}`, async (db) => {
        await installGraphile(ctx, db);
        const n = limitedJobs(o);
        const utils = await makeWorkerUtils({ connectionString: db.url, logger: quietLogger });
        try {
          const all = payloads(n, o.jobMs);
          for (let i = 0; i < n; i += 1000) await utils.addJobs(all.slice(i, i + 1000).map((payload) => ({ identifier: TASK, payload, queueName: QUEUE })));
        } finally {
          await utils.release();
        }
        const w = await startGraphile(ctx, db, kind, o.concurrency);
        try {
          return await runWindow(w, () => graphileSucceeded(db, n), o, n);
        } finally {
          await w.stop();
        }
      }),
  };
}

export const LIMITED_SYSTEMS: LimitedSystem[] = [pgdispatchLimited, graphileLimited('serial')];
