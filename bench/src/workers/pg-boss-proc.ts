/**
 * pg-boss in its own process: started (pool, LISTEN connection) before `go`, `work()` on go.
 * Env: BENCH_DB_URL, BENCH_BATCH_SIZE, BENCH_CONCURRENCY (semaphore slots).
 */
import { newBoss } from '../systems/pg-boss.js';
import { QUEUE } from '../systems/types.js';
import { childChannel, Semaphore } from './child.js';

const ch = childChannel();
try {
  const boss = newBoss(process.env.BENCH_DB_URL as string);
  await boss.start();
  const sem = new Semaphore(Number(process.env.BENCH_CONCURRENCY ?? 16));
  const batchSize = Number(process.env.BENCH_BATCH_SIZE ?? 250);
  ch.ready();
  await ch.go;
  await boss.work(QUEUE, { batchSize, localConcurrency: 2, burstWhenBatchFull: true }, async (jobs) => {
    await Promise.all(jobs.map((job) => sem.run(async () => ch.mark(job.data))));
  });
  await ch.stopping;
  await boss.stop({ graceful: false, timeout: 2_000 });
  process.exit(0);
} catch (err) {
  ch.error(err);
  process.exit(1);
}
