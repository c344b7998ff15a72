import { createBenchDb, type BenchDb } from '../lib/pg-target.js';
import { sleep } from '../lib/stats.js';
import type { BenchContext, WorkerProfile } from '../systems/types.js';
import type { BenchPayload } from '../workers/child.js';

export interface ProcessingResult {
  /** Jobs per second from `go` until the database shows every job finished. */
  rate: number;
  seconds: number;
  succeeded: number;
  /** Peak RSS (VmHWM) in bytes per process role. */
  rss: Record<string, number>;
}

/** Fills `db` with `n` jobs through the profile's own bulk enqueue, then ANALYZE (as autovacuum would). */
export async function fillBacklog(ctx: BenchContext, profile: WorkerProfile, db: BenchDb, n: number, chunk = 1000): Promise<void> {
  const enq = await profile.enqueuer(ctx, db);
  try {
    for (let start = 0; start < n; start += chunk) {
      const payloads: BenchPayload[] = [];
      for (let i = start; i < Math.min(n, start + chunk); i++) payloads.push({ i });
      await enq.bulk(payloads);
    }
  } finally {
    await enq.close();
  }
  await db.sql`analyze`;
}

/**
 * Polls `remaining` until it reaches 0. The interval adapts to the observed rate (about half the
 * expected time left, 2–100 ms) so the end is seen within a few ms without a hot polling loop.
 */
export async function waitUntilDone(remaining: () => Promise<number>, total: number, t0: number, timeoutMs: number): Promise<void> {
  for (;;) {
    const left = await remaining();
    if (left === 0) return;
    const elapsed = performance.now() - t0;
    if (elapsed > timeoutMs) throw new Error(`timed out after ${Math.round(elapsed)} ms with ${left} of ${total} jobs left`);
    const done = total - left;
    const rate = done > 0 ? done / elapsed : 0;
    await sleep(rate > 0 ? Math.min(100, Math.max(2, (left / rate) * 0.5)) : 20);
  }
}

export async function measureProcessing(ctx: BenchContext, profile: WorkerProfile, opts: { n: number; concurrency: number; timeoutMs: number }): Promise<ProcessingResult> {
  const db = await createBenchDb(ctx.target, `proc_${profile.id}`);
  try {
    await profile.install(ctx, db);
    await fillBacklog(ctx, profile, db, opts.n);
    const w = await profile.start(ctx, db, { concurrency: opts.concurrency });
    try {
      const t0 = performance.now();
      await w.go();
      await waitUntilDone(() => profile.remaining(db), opts.n, t0, opts.timeoutMs);
      const seconds = (performance.now() - t0) / 1000;
      const rss: Record<string, number> = {};
      for (const p of w.processes) rss[p.role] = await p.child.peakRss();
      const succeeded = await profile.succeeded(db, opts.n);
      return { rate: opts.n / seconds, seconds, succeeded, rss };
    } finally {
      await w.stop();
    }
  } finally {
    await db.drop();
  }
}
