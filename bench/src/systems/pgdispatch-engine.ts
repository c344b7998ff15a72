import { fileURLToPath } from 'node:url';
import { closeDb, createDb, type Sql } from '@pgdispatch/engine/db';
import { migrate } from '@pgdispatch/engine/migrator';
import { jobEnqueue, jobEnqueueManyIds } from '@pgdispatch/engine/queries/job-enqueue';
import { queueStats, queueUpsert } from '@pgdispatch/engine/queries/queue-admin';
import type { BenchDb } from '../lib/pg-target.js';
import { startChildWorker } from './child-worker.js';
import type { BenchContext, Enqueuer, EnqueueTarget, RunningWorker, WorkerProfile } from './types.js';
import { QUEUE, TASK, WATCHER } from './types.js';

/**
 * pgdispatch through the engine directly: the enqueue operations the api calls, and a bare
 * claim + completeMany loop (workers/engine-loop-proc.ts) as a reference for the dispatcher.
 */

const PROC = fileURLToPath(new URL('../workers/engine-loop-proc.ts', import.meta.url));

/** Migrates a fresh database and creates the bench queue (no concurrency limit). */
export async function installPgdispatch(_ctx: BenchContext, db: BenchDb): Promise<void> {
  await migrate(db.sql);
  await queueUpsert(db.sql, { name: QUEUE });
}

export async function openEngineEnqueuer(_ctx: BenchContext, db: BenchDb): Promise<Enqueuer> {
  const sql: Sql = createDb({ url: db.url, max: 2, applicationName: 'pgdispatch-bench-enqueue' });
  return {
    single: async (payload) => {
      await jobEnqueue(sql, { queue: QUEUE, task: TASK, payload });
    },
    bulk: async (payloads) => {
      // Ids only, as a bulk loader wants them (and as the HTTP bulk enqueue asks with ?return=ids).
      await jobEnqueueManyIds(sql, { items: payloads.map((payload) => ({ queue: QUEUE, task: TASK, payload })) });
    },
    close: () => closeDb(sql),
  };
}

export const engineEnqueue: EnqueueTarget = {
  id: 'pgdispatch (engine)',
  system: 'pgdispatch',
  pending: () => undefined,
  install: installPgdispatch,
  open: openEngineEnqueuer,
};

/**
 * Waiting + running jobs, polled every 2–100 ms while a run goes (and for minutes in the soak, with
 * millions of finished rows): each condition is exactly a partial index's predicate
 * (jobs_claim_idx, jobs_running_idx), so the count reads live entries only, never the table. Before,
 * it was the engine's queueDepths (per queue and state, with the oldest age): ~12 ms per poll under
 * a 20k run, a seventh of a core of the database's time counted as pgdispatch's. Tagged with
 * WATCHER so pg_stat_statements summaries leave it out (every system's watcher carries it).
 */
export async function pgdispatchRemaining(db: BenchDb): Promise<number> {
  const [r] = await db.sql.unsafe<Record<string, number>[]>(`
    select (select count(*) from jobs where state in ('queued', 'retry_waiting'))::int
         + (select count(*) from jobs where state = 'running')::int as ${WATCHER}`);
  return r?.[WATCHER] ?? Number.NaN;
}

export async function pgdispatchSucceeded(db: BenchDb): Promise<number> {
  return (await queueStats(db.sql, { name: QUEUE })).counts.succeeded;
}

export const engineLoopProfile: WorkerProfile = {
  id: 'pgdispatch engine loop (reference)',
  system: 'pgdispatch',
  kind: 'reference',
  settings: 'one process: jobClaim 500 ahead, 16 handler loops, jobCompleteMany with one flush in flight, LISTEN wake-ups',
  pending: () => undefined,
  install: installPgdispatch,
  enqueuer: openEngineEnqueuer,
  start: async (ctx, db, opts): Promise<RunningWorker> => {
    return startChildWorker(ctx, PROC, 'engine-loop', { BENCH_DB_URL: db.url, BENCH_CONCURRENCY: String(opts.concurrency) });
  },
  remaining: pgdispatchRemaining,
  succeeded: pgdispatchSucceeded,
};
