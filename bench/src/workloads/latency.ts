import { createBenchDb } from '../lib/pg-target.js';
import { percentile, sleep, wallMs } from '../lib/stats.js';
import type { BenchContext, WorkerProfile } from '../systems/types.js';
import { waitUntilDone } from './processing.js';

export interface LatencyResult {
  /** Enqueue start → handler start. */
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** Enqueue call duration (start → acknowledged, i.e. committed), p50. */
  ackP50: number;
  /** Acknowledged → handler start, p50: the dispatch path alone. */
  afterAckP50: number;
  /** Jobs whose handler start was seen. */
  seen: number;
}

/**
 * Pickup latency of an idle worker: `jobs` single enqueues on a fixed schedule (`intervalMs`
 * apart), each from the start of the enqueue call to the start of its handler, in ms. Handler start
 * times come from the executor process over IPC, corrected by the measured clock offset.
 */
export async function measureLatency(ctx: BenchContext, profile: WorkerProfile, opts: { jobs: number; intervalMs: number; concurrency: number }): Promise<LatencyResult> {
  const db = await createBenchDb(ctx.target, `lat_${profile.id}`);
  try {
    await profile.install(ctx, db);
    const w = await profile.start(ctx, db, { concurrency: opts.concurrency });
    const enq = await profile.enqueuer(ctx, db);
    try {
      await w.go();
      // Warm the path once (connections, prepared statements), then let the worker go idle.
      await enq.single({ i: -1 });
      await waitUntilDone(() => profile.remaining(db), 1, performance.now(), 30_000);
      const offset = await w.executor.clockOffset();
      await sleep(300);
      const sent: number[] = [];
      const acked: number[] = [];
      const start = wallMs() + 20;
      for (let i = 0; i < opts.jobs; i++) {
        const at = start + i * opts.intervalMs;
        const wait = at - wallMs();
        if (wait > 0) await sleep(wait);
        sent[i] = wallMs();
        await enq.single({ i, m: 1 });
        acked[i] = wallMs();
      }
      const until = Date.now() + 15_000;
      while (w.executor.marks.size < opts.jobs && Date.now() < until) await sleep(10);
      const lat: number[] = [];
      const ack: number[] = [];
      const afterAck: number[] = [];
      for (let i = 0; i < opts.jobs; i++) {
        const t = w.executor.marks.get(i);
        if (t === undefined) continue;
        lat.push(t - offset - (sent[i] as number));
        ack.push((acked[i] as number) - (sent[i] as number));
        afterAck.push(t - offset - (acked[i] as number));
      }
      if (lat.length < opts.jobs) throw new Error(`only ${lat.length} of ${opts.jobs} handler starts seen within 15 s`);
      return { p50: percentile(lat, 50), p95: percentile(lat, 95), p99: percentile(lat, 99), max: Math.max(...lat), ackP50: percentile(ack, 50), afterAckP50: percentile(afterAck, 50), seen: lat.length };
    } finally {
      await enq.close();
      await w.stop();
    }
  } finally {
    await db.drop();
  }
}
