import { createBenchDb, type BenchDb } from '../lib/pg-target.js';
import { statementSummary, type StatementSummary } from '../lib/pgss.js';
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
  /** CPU time (user + system) per job in µs per process role, over the measured window. */
  cpuUsPerJob: Record<string, number>;
  /** The run's statements (fill excluded), when pg_stat_statements is loaded. */
  statements?: StatementSummary;
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
    const before = await statementSummary(ctx.target, db.name);
    let result: ProcessingResult;
    try {
      const cpu0 = await Promise.all(w.processes.map((p) => p.child.cpuUs()));
      const t0 = performance.now();
      await w.go();
      await waitUntilDone(() => profile.remaining(db), opts.n, t0, opts.timeoutMs);
      const seconds = (performance.now() - t0) / 1000;
      const cpu1 = await Promise.all(w.processes.map((p) => p.child.cpuUs()));
      const rss: Record<string, number> = {};
      const cpuUsPerJob: Record<string, number> = {};
      for (const [i, p] of w.processes.entries()) {
        rss[p.role] = await p.child.peakRss();
        cpuUsPerJob[p.role] = ((cpu1[i] ?? Number.NaN) - (cpu0[i] ?? Number.NaN)) / opts.n;
      }
      const succeeded = await profile.succeeded(db, opts.n);
      result = { rate: opts.n / seconds, seconds, succeeded, rss, cpuUsPerJob };
    } finally {
      await w.stop();
    }
    const after = await statementSummary(ctx.target, db.name);
    if (after && before) result.statements = subtract(after, before);
    return result;
  } finally {
    await db.drop();
  }
}

/** The statements of the measured window: totals after minus totals before (setup and fill). */
function subtract(a: StatementSummary, b: StatementSummary): StatementSummary {
  const g = (x: StatementSummary['claim'], y: StatementSummary['claim']) => ({ calls: x.calls - y.calls, rows: x.rows - y.rows, execMs: x.execMs - y.execMs });
  return { statements: a.statements - b.statements, execMs: a.execMs - b.execMs, claim: g(a.claim, b.claim), complete: g(a.complete, b.complete), top: a.top };
}
