import type { BenchDb } from '../lib/pg-target.js';
import { openEngineEnqueuer, pgdispatchRemaining, pgdispatchSucceeded } from './pgdispatch-engine.js';
import { installPaused, resume, serverPending, startServerProcess } from './pgdispatch-server.js';
import { THROUGHPUT_ENV } from './pgdispatch-all.js';
import type { RunningWorker, WorkerProfile } from './types.js';

/**
 * pgdispatch split over HTTP: one `api` process (dispatcher, batch pull) and one `worker` process
 * that pulls over loopback HTTP (claiming ahead like the throughput profile) and holds no
 * database credentials.
 */
export const splitProfile: WorkerProfile = {
  id: 'pgdispatch split (api + worker, HTTP)',
  system: 'pgdispatch',
  kind: 'split',
  settings: `DISPATCH_ROLE=api + DISPATCH_ROLE=worker (WORKER_CONCURRENCY=16, WORKER_PREFETCH=${THROUGHPUT_ENV.WORKER_PREFETCH}), loopback HTTP`,
  pending: serverPending,
  install: installPaused,
  enqueuer: openEngineEnqueuer,
  start: async (ctx, db: BenchDb, opts): Promise<RunningWorker> => {
    const api = await startServerProcess(ctx, { role: 'api', db, name: 'split-api' });
    try {
      const worker = await startServerProcess(ctx, { role: 'worker', apiUrl: api.url, concurrency: opts.concurrency, env: THROUGHPUT_ENV, name: 'split-worker' });
      return {
        processes: [
          { role: 'api', child: api.child },
          { role: 'worker', child: worker.child },
        ],
        executor: worker.child,
        go: () => resume(db),
        stop: async () => {
          await worker.child.stop();
          await api.child.stop();
        },
      };
    } catch (err) {
      await api.child.stop();
      throw err;
    }
  },
  remaining: pgdispatchRemaining,
  succeeded: pgdispatchSucceeded,
};
