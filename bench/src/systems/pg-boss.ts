import { fileURLToPath } from 'node:url';
import { PgBoss } from 'pg-boss';
import type { BenchDb } from '../lib/pg-target.js';
import { startChildWorker } from './child-worker.js';
import type { BenchContext, Enqueuer, EnqueueTarget, RunningWorker, WorkerProfile } from './types.js';
import { QUEUE, WATCHER } from './types.js';

/**
 * pg-boss at its best: LISTEN/NOTIFY on (constructor `useListenNotify: true`, queue `notify: true`),
 * `work()` with batchSize 250, localConcurrency 2 and burstWhenBatchFull (fetch again at once while
 * batches come back full), handlers run through a 16-slot semaphore. Bounded profile: batchSize 8.
 * (batchSize 1 sleeps a polling interval after every fetch, so it is never used.)
 */

const PROC = fileURLToPath(new URL('../workers/pg-boss-proc.ts', import.meta.url));

export function newBoss(url: string): PgBoss {
  const boss = new PgBoss({ connectionString: url, useListenNotify: true });
  boss.on('error', (err) => process.stderr.write(`[pg-boss] error: ${String(err)}\n`));
  return boss;
}

async function install(_ctx: BenchContext, db: BenchDb): Promise<void> {
  const boss = newBoss(db.url);
  await boss.start();
  await boss.createQueue(QUEUE, { notify: true });
  await boss.stop({ graceful: false });
}

async function open(_ctx: BenchContext, db: BenchDb): Promise<Enqueuer> {
  const boss = newBoss(db.url);
  await boss.start();
  return {
    single: async (payload) => {
      await boss.send(QUEUE, payload);
    },
    bulk: async (payloads) => {
      await boss.insert(QUEUE, payloads.map((data) => ({ data })));
    },
    close: () => boss.stop({ graceful: false }),
  };
}

export const pgBossEnqueue: EnqueueTarget = { id: 'pg-boss', system: 'pg-boss', pending: () => undefined, install, open };

function profile(kind: 'throughput' | 'bounded'): WorkerProfile {
  const batchSize = kind === 'throughput' ? 250 : 8;
  return {
    id: `pg-boss (${kind})`,
    system: 'pg-boss',
    kind,
    settings: `useListenNotify, queue notify, work batchSize ${batchSize}, localConcurrency 2, burstWhenBatchFull, 16-slot semaphore`,
    pending: () => undefined,
    install,
    enqueuer: open,
    start: async (ctx, db, opts): Promise<RunningWorker> => {
      return startChildWorker(ctx, PROC, `pg-boss-${kind}`, { BENCH_DB_URL: db.url, BENCH_BATCH_SIZE: String(batchSize), BENCH_CONCURRENCY: String(opts.concurrency) });
    },
    remaining: async (db) => {
      const [r] = await db.sql.unsafe<Record<string, number>[]>(`
        select count(*)::int as ${WATCHER} from pgboss.job where name = $1 and state in ('created', 'retry', 'active')`, [QUEUE]);
      return r?.[WATCHER] ?? 0;
    },
    succeeded: async (db) => {
      const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from pgboss.job where name = ${QUEUE} and state = 'completed'`;
      return r?.n ?? 0;
    },
  };
}

export const pgBossProfiles = [profile('throughput'), profile('bounded')];
