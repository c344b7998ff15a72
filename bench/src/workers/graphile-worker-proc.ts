/**
 * graphile-worker in its own process (like every system in the bench), started with a warmed
 * pool and run() called on `go`. Env: BENCH_DB_URL, BENCH_PROFILE (throughput|bounded|serial),
 * BENCH_CONCURRENCY. `serial` is for jobs in a named queue: no localQueue and graphile-worker's
 * default unbatched completion (a batched completion keeps the queue locked until its flush).
 */
import { createRequire } from 'node:module';
import type { Pool, PoolClient } from 'pg';
import { run } from 'graphile-worker';
import { quietLogger } from '../systems/graphile-worker.js';
import { TASK } from '../systems/types.js';
import { childChannel, type BenchPayload } from './child.js';

const ch = childChannel();
try {
  const url = process.env.BENCH_DB_URL as string;
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
  const kind = process.env.BENCH_PROFILE ?? 'throughput';
  const throughput = kind === 'throughput';
  // The pg driver graphile-worker itself depends on, so pool and library agree on versions.
  const require = createRequire(createRequire(import.meta.url).resolve('graphile-worker'));
  const pg = require('pg') as typeof import('pg');
  const maxPoolSize = Math.max(10, concurrency + 2);
  const pool: Pool = new pg.Pool({ connectionString: url, max: maxPoolSize });
  pool.on('error', (err) => ch.error(err));
  const warm: PoolClient[] = await Promise.all(Array.from({ length: maxPoolSize }, () => pool.connect()));
  for (const c of warm) c.release();
  ch.ready();
  await ch.go;
  const runner = await run({
    pgPool: pool,
    logger: quietLogger,
    noHandleSignals: true,
    taskList: {
      [TASK]: async (payload) => {
        ch.mark(payload);
        const s = (payload as BenchPayload | null)?.s;
        if (s) await new Promise((r) => setTimeout(r, s));
      },
    },
    preset: {
      worker: {
        concurrentJobs: concurrency,
        maxPoolSize,
        ...(kind === 'serial' ? {} : { completeJobBatchDelay: 0, failJobBatchDelay: 0 }),
        ...(throughput ? { localQueue: { size: 500 } } : {}),
      },
    },
  });
  await ch.stopping;
  await runner.stop();
  await pool.end();
  process.exit(0);
} catch (err) {
  ch.error(err);
  process.exit(1);
}
