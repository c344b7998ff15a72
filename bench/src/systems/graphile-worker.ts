import { fileURLToPath } from 'node:url';
import { Logger, makeWorkerUtils, runMigrations, type WorkerUtils } from 'graphile-worker';
import type { BenchDb } from '../lib/pg-target.js';
import { startChildWorker } from './child-worker.js';
import type { BenchContext, Enqueuer, EnqueueTarget, RunningWorker, WorkerProfile } from './types.js';
import { TASK, WATCHER } from './types.js';

/**
 * graphile-worker at its best: concurrentJobs 16, a 500-job localQueue (batch fetch), batched
 * completions without delay (completeJobBatchDelay/failJobBatchDelay 0), maxPoolSize
 * concurrentJobs + 2 as its docs advise, and a warnings-only logger (the default logs every job).
 * Bounded profile: no localQueue, so each of the 16 workers fetches its own job.
 */

/** Warnings and errors only: the default logger writes a line per job, which costs throughput. */
export const quietLogger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') process.stderr.write(`[graphile-worker] ${level}: ${message}\n`);
});

const PROC = fileURLToPath(new URL('../workers/graphile-worker-proc.ts', import.meta.url));

export async function install(_ctx: BenchContext, db: BenchDb): Promise<void> {
  await runMigrations({ connectionString: db.url, logger: quietLogger });
}

async function open(_ctx: BenchContext, db: BenchDb): Promise<Enqueuer> {
  const utils: WorkerUtils = await makeWorkerUtils({ connectionString: db.url, logger: quietLogger });
  return {
    single: async (payload) => {
      await utils.addJob(TASK, payload);
    },
    bulk: async (payloads) => {
      await utils.addJobs(payloads.map((payload) => ({ identifier: TASK, payload })));
    },
    close: async () => {
      await utils.release();
    },
  };
}

export const graphileEnqueue: EnqueueTarget = {
  id: 'graphile-worker',
  system: 'graphile-worker',
  pending: () => undefined,
  install,
  open,
};

/** Starts graphile-worker-proc.ts with the given settings profile (see its header). */
export function startGraphile(ctx: BenchContext, db: BenchDb, kind: 'throughput' | 'bounded' | 'serial', concurrency: number): Promise<RunningWorker> {
  return startChildWorker(ctx, PROC, `graphile-worker-${kind}`, { BENCH_DB_URL: db.url, BENCH_PROFILE: kind, BENCH_CONCURRENCY: String(concurrency) });
}

function profile(kind: 'throughput' | 'bounded'): WorkerProfile {
  return {
    id: `graphile-worker (${kind})`,
    system: 'graphile-worker',
    kind,
    settings:
      kind === 'throughput'
        ? 'concurrentJobs 16, localQueue.size 500, completeJobBatchDelay 0, failJobBatchDelay 0, maxPoolSize 18, warnings-only logger'
        : 'concurrentJobs 16, no localQueue, completeJobBatchDelay 0, failJobBatchDelay 0, maxPoolSize 18, warnings-only logger',
    pending: () => undefined,
    install,
    enqueuer: open,
    start: (ctx, db, opts) => startGraphile(ctx, db, kind, opts.concurrency),
    // Finished jobs are deleted; failed ones stay with last_error set.
    remaining: async (db) => {
      const [r] = await db.sql.unsafe<Record<string, number>[]>(`select count(*)::int as ${WATCHER} from graphile_worker._private_jobs`);
      return r?.[WATCHER] ?? 0;
    },
    succeeded: async (db, total) => {
      const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from graphile_worker._private_jobs`;
      return total - (r?.n ?? 0);
    },
  };
}

export const graphileProfiles = [profile('throughput'), profile('bounded')];
