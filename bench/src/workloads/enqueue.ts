import { createBenchDb } from '../lib/pg-target.js';
import type { BenchContext, EnqueueTarget } from '../systems/types.js';
import type { BenchPayload } from '../workers/child.js';

export interface EnqueueResult {
  single: number;
  bulk: number;
}

/**
 * Single: `singleN` awaited enqueues, one commit each, one after another. Bulk: `n` jobs in chunks
 * of `chunk`, one call per chunk. Jobs per second; each in a fresh database after one untimed
 * warm-up call (connections open, statements prepared).
 */
export async function measureEnqueue(ctx: BenchContext, t: EnqueueTarget, opts: { singleN: number; n: number; chunk: number }): Promise<EnqueueResult> {
  const single = await once(ctx, t, 'single', async (enq) => {
    for (let i = 0; i < opts.singleN; i++) await enq.single({ i });
    return opts.singleN;
  });
  const bulk = await once(ctx, t, 'bulk', async (enq) => {
    for (let start = 0; start < opts.n; start += opts.chunk) {
      const payloads: BenchPayload[] = [];
      for (let i = start; i < Math.min(opts.n, start + opts.chunk); i++) payloads.push({ i });
      await enq.bulk(payloads);
    }
    return opts.n;
  });
  return { single, bulk };
}

async function once(ctx: BenchContext, t: EnqueueTarget, label: string, body: (enq: Awaited<ReturnType<EnqueueTarget['open']>>) => Promise<number>): Promise<number> {
  const db = await createBenchDb(ctx.target, `enq_${t.system}_${label}`);
  try {
    await t.install(ctx, db);
    const enq = await t.open(ctx, db);
    try {
      await enq.single({ i: -1 });
      await enq.bulk([{ i: -2 }, { i: -3 }]);
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
