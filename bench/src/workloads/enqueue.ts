import { createBenchDb } from '../lib/pg-target.js';
import type { BenchContext, EnqueueTarget } from '../systems/types.js';
import type { BenchPayload } from '../workers/child.js';

export interface EnqueueResult {
  single: number;
  bulk: number;
}

/**
 * Single: `singleN` awaited enqueues, one commit each, one after another. Bulk: `n` jobs in chunks
 * of `chunk`, one call per chunk. Jobs per second; each in a fresh database after an untimed
 * warm-up of the same calls (WARM_CALLS of the measured kind: connections open, statements
 * prepared, and a server process started for the measurement past its first requests, whose code
 * V8 has not optimised yet: over HTTP 20 cold chunks of 1,000 ran at 0.69–0.74× of the engine in
 * runs I and J, warm ones at 1.05× in enqueue-probe.ts).
 */
export async function measureEnqueue(ctx: BenchContext, t: EnqueueTarget, opts: { singleN: number; n: number; chunk: number }): Promise<EnqueueResult> {
  const warmSingle = async (enq: Enqueuer) => {
    for (let i = 0; i < WARM_CALLS * 10; i++) await enq.single({ i: -1 - i });
  };
  const warmBulk = async (enq: Enqueuer) => {
    for (let c = 0; c < WARM_CALLS; c++) await enq.bulk(Array.from({ length: opts.chunk }, (_, i) => ({ i: -1 - i })));
  };
  const single = await once(ctx, t, 'single', warmSingle, async (enq) => {
    for (let i = 0; i < opts.singleN; i++) await enq.single({ i });
    return opts.singleN;
  });
  const bulk = await once(ctx, t, 'bulk', warmBulk, async (enq) => {
    for (let start = 0; start < opts.n; start += opts.chunk) {
      const payloads: BenchPayload[] = [];
      for (let i = start; i < Math.min(opts.n, start + opts.chunk); i++) payloads.push({ i });
      await enq.bulk(payloads);
    }
    return opts.n;
  });
  return { single, bulk };
}

type Enqueuer = Awaited<ReturnType<EnqueueTarget['open']>>;

/** Untimed calls before each measurement: bulk chunks, or ten times as many single enqueues. */
const WARM_CALLS = 5;

async function once(ctx: BenchContext, t: EnqueueTarget, label: string, warm: (enq: Enqueuer) => Promise<void>, body: (enq: Enqueuer) => Promise<number>): Promise<number> {
  const db = await createBenchDb(ctx.target, `enq_${t.system}_${label}`);
  try {
    await t.install(ctx, db);
    const enq = await t.open(ctx, db);
    try {
      await warm(enq);
      const t0 = performance.now();
      const jobs = await body(enq);
      return jobs / ((performance.now() - t0) / 1000);
    } finally {
      await enq.close();
    }
  } finally {
    await db.drop();
  }
}
