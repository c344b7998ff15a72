import type { BenchDb } from '../lib/pg-target.js';
import { openEngineEnqueuer, pgdispatchRemaining, pgdispatchSucceeded } from './pgdispatch-engine.js';
import { installPaused, resume, serverPending, startServerProcess } from './pgdispatch-server.js';
import type { RunningWorker, WorkerProfile } from './types.js';

/**
 * pgdispatch role `all`: one process with api, dispatcher and worker runtime on the in-process
 * transport. Throughput claims ahead of the handlers (WORKER_PREFETCH, like graphile-worker's
 * localQueue of 500); bounded claims only for free handler slots (WORKER_PREFETCH=0, the default).
 */
export const THROUGHPUT_ENV: Record<string, string> = { WORKER_PREFETCH: process.env.BENCH_PREFETCH ?? '500' };
export const BOUNDED_ENV: Record<string, string> = { WORKER_PREFETCH: '0' };

function allProfile(kind: 'throughput' | 'bounded'): WorkerProfile {
  const env = kind === 'throughput' ? THROUGHPUT_ENV : BOUNDED_ENV;
  return {
    id: `pgdispatch all (${kind})`,
    system: 'pgdispatch',
    kind,
    settings: `DISPATCH_ROLE=all, WORKER_CONCURRENCY=16${Object.entries(env).map(([k, v]) => `, ${k}=${v}`).join('')}`,
    pending: serverPending,
    install: installPaused,
    enqueuer: openEngineEnqueuer,
    start: async (ctx, db: BenchDb, opts): Promise<RunningWorker> => {
      const s = await startServerProcess(ctx, { role: 'all', db, concurrency: opts.concurrency, env, name: `all-${kind}` });
      return {
        processes: [{ role: 'all', child: s.child }],
        executor: s.child,
        go: () => resume(db),
        stop: () => s.child.stop(),
      };
    },
    remaining: pgdispatchRemaining,
    succeeded: pgdispatchSucceeded,
  };
}

export const allThroughput = allProfile('throughput');
export const allBounded = allProfile('bounded');
