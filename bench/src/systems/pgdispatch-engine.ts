import { fileURLToPath } from 'node:url';
import { closeDb, createDb, type Sql } from '@pgdispatch/engine/db';
import { migrate } from '@pgdispatch/engine/migrator';
import { jobEnqueue, jobEnqueueManyIds } from '@pgdispatch/engine/queries/job-enqueue';
import { queueDepths, queueStats, queueUpsert } from '@pgdispatch/engine/queries/queue-admin';
import type { BenchDb } from '../lib/pg-target.js';
import { startChildWorker } from './child-worker.js';
import type { BenchContext, Enqueuer, EnqueueTarget, RunningWorker, WorkerProfile } from './types.js';
import { QUEUE, TASK } from './types.js';

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

/** Waiting + running jobs of the bench queue, through the engine's depth query (live states only). */
export async function pgdispatchRemaining(db: BenchDb): Promise<number> {
  const rows = await queueDepths(db.sql);
  return rows.filter((r) => r.queue === QUEUE).reduce((a, r) => a + r.n, 0);
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
