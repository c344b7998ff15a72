import { invalidRequest } from '@pgdispatch/core/errors';
import type { JobState } from '@pgdispatch/core/types';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';

export interface QueueOverview {
  name: string;
  paused: boolean;
  concurrencyLimit: number | null;
  /** Most claims per `rateIntervalMs` (null = no rate limit). */
  rateLimit: number | null;
  rateIntervalMs: number;
  counts: Record<JobState, number>;
  /** Seconds the oldest runnable waiting job has waited past its run_at (0 when none). */
  oldestWaitingSeconds: number;
}

const zeroCounts = (): Record<JobState, number> => ({ queued: 0, running: 0, succeeded: 0, retry_waiting: 0, failed: 0, cancelled: 0 });

/**
 * Every queue with its counts by state and the oldest runnable job's age, in two statements
 * (not one per queue). The counts are an index-only scan of `jobs_queue_state_id_idx` grouped by
 * (queue, state); the age reads the partial claim index only. Cost grows with the jobs kept
 * (retention bounds it), which is why the api caches the answer briefly.
 */
export async function queueOverview(exec: Exec): Promise<QueueOverview[]> {
  const [queues, counts, ages] = await Promise.all([
    pg(exec<{ name: string; paused: boolean; concurrencyLimit: number | null; rateLimit: number | null; rateIntervalMs: number }[]>`
      select name, paused, concurrency_limit as "concurrencyLimit", rate_limit as "rateLimit", rate_interval_ms as "rateIntervalMs"
        from queues order by name`),
    pg(exec<{ queue: string; state: JobState; n: number }[]>`
      select queue, state, count(*)::int as n from jobs group by queue, state`),
    pg(exec<{ queue: string; s: number }[]>`
      select queue, extract(epoch from now() - min(run_at))::float8 as s from jobs
       where state in ('queued', 'retry_waiting') and run_at <= now() group by queue`),
  ]);
  const byQueue = new Map(queues.map((q) => [q.name, { ...q, counts: zeroCounts(), oldestWaitingSeconds: 0 }]));
  for (const c of counts) {
    const q = byQueue.get(c.queue);
    if (q) q.counts[c.state] = c.n;
  }
  for (const a of ages) {
    const q = byQueue.get(a.queue);
    if (q) q.oldestWaitingSeconds = Math.max(0, a.s);
  }
  return [...byQueue.values()];
}

export interface Throughput {
  /** Width of one bucket, in seconds. */
  bucketSeconds: number;
  /** Database time the newest bucket ends at (ISO 8601). */
  until: string;
  /** Per queue, oldest bucket first: jobs that ended `succeeded` and `failed` in each bucket. */
  queues: Record<string, { succeeded: number[]; failed: number[] }>;
}

/**
 * Jobs finished per bucket over the last `windowSeconds` (default an hour in 60 one-minute
 * buckets), by queue and final outcome, from `finished_at` through `jobs_finished_idx`. Retries
 * are not failures here: a failure is a job that ended `failed`. Reads one index range of the
 * window, so the cost is proportional to the jobs finished in it.
 */
export async function jobThroughput(exec: Exec, params: { windowSeconds?: number; bucketSeconds?: number } = {}): Promise<Throughput> {
  const windowSeconds = params.windowSeconds ?? 3600;
  const bucketSeconds = params.bucketSeconds ?? 60;
  if (!Number.isInteger(windowSeconds) || !Number.isInteger(bucketSeconds) || bucketSeconds < 1 || windowSeconds < bucketSeconds || windowSeconds % bucketSeconds !== 0 || windowSeconds > 86_400 || windowSeconds / bucketSeconds > 1440) {
    throw invalidRequest('windowSeconds must be a multiple of bucketSeconds, at most 86400 and 1440 buckets');
  }
  const n = windowSeconds / bucketSeconds;
  const [rows, [now]] = await Promise.all([
    pg(exec<{ queue: string; ago: number; state: 'succeeded' | 'failed'; n: number }[]>`
      select queue, floor(extract(epoch from now() - finished_at) / ${bucketSeconds})::int as ago, state, count(*)::int as n
        from jobs
       where finished_at > now() - make_interval(secs => ${windowSeconds}) and state in ('succeeded', 'failed')
       group by 1, 2, 3`),
    pg(exec<{ until: Date }[]>`select now() as until`),
  ]);
  const queues: Throughput['queues'] = {};
  for (const r of rows) {
    const series = (queues[r.queue] ??= { succeeded: new Array<number>(n).fill(0), failed: new Array<number>(n).fill(0) });
    const i = n - 1 - Math.min(Math.max(r.ago, 0), n - 1);
    series[r.state][i]! += r.n;
  }
  return { bucketSeconds, until: now!.until.toISOString(), queues };
}
