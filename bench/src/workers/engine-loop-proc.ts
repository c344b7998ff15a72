/**
 * The bare engine loop, a reference for what the dispatcher and transports add: one process claims
 * up to PREFETCH jobs ahead with jobClaim (one SKIP LOCKED statement), 16 handler loops take from
 * that buffer, and finished jobs are completed with jobCompleteMany, one flush in flight at a time.
 * LISTEN wakes an idle claimer; a 1 s poll is the fallback. Env: BENCH_DB_URL, BENCH_CONCURRENCY,
 * BENCH_PREFETCH (default 500).
 */
import type { ClaimedJob } from '@pgdispatch/core/types';
import { closeDb, createDb } from '@pgdispatch/engine/db';
import { listenForJobs } from '@pgdispatch/engine/notify';
import { jobClaim } from '@pgdispatch/engine/queries/job-claim';
import { jobCompleteMany, type CompleteItem } from '@pgdispatch/engine/queries/job-complete';
import { childChannel } from './child.js';

const ch = childChannel();

class Signal {
  private waiters: (() => void)[] = [];
  wait(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  fire(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

try {
  const sql = createDb({ url: process.env.BENCH_DB_URL as string, max: 4, applicationName: 'pgdispatch-bench-engine-loop' });
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
  const prefetch = Number(process.env.BENCH_PREFETCH ?? 500);
  await sql`select 1`;
  const buffer: ClaimedJob[] = [];
  const jobArrived = new Signal();
  const needJobs = new Signal();
  let stopped = false;
  const listener = await listenForJobs(sql, () => needJobs.fire());

  const claimer = async () => {
    while (!stopped) {
      if (buffer.length >= concurrency) {
        await needJobs.wait(1_000);
        continue;
      }
      const jobs = await jobClaim(sql, { queues: '*', limit: prefetch - buffer.length, leaseMs: 60_000 });
      buffer.push(...jobs);
      jobArrived.fire();
      if (jobs.length === 0) await needJobs.wait(1_000);
    }
  };

  const pending: CompleteItem[] = [];
  let flushing = false;
  const flush = async () => {
    if (flushing) return;
    flushing = true;
    while (pending.length > 0) await jobCompleteMany(sql, { items: pending.splice(0) });
    flushing = false;
  };

  const handle = async (payload: unknown) => {
    ch.mark(payload);
  };
  const handlerLoop = async () => {
    while (!stopped) {
      const job = buffer.shift();
      if (!job) {
        await jobArrived.wait(1_000);
        continue;
      }
      if (buffer.length < concurrency) needJobs.fire();
      await handle(job.payload);
      pending.push({ id: job.id, leaseToken: job.leaseToken });
      void flush().catch((err) => ch.error(err));
    }
  };

  ch.ready();
  await ch.go;
  const loops = [claimer(), ...Array.from({ length: concurrency }, handlerLoop)];
  await ch.stopping;
  stopped = true;
  needJobs.fire();
  jobArrived.fire();
  await Promise.allSettled(loops);
  await listener.stop();
  await closeDb(sql, 1);
  process.exit(0);
} catch (err) {
  ch.error(err);
  process.exit(1);
}
