import { createBenchDb, dropDatabase, type BenchDb } from '../lib/pg-target.js';
import { sleep } from '../lib/stats.js';
import { installPgdispatch, openEngineEnqueuer } from '../systems/pgdispatch-engine.js';
import type { BenchContext, WorkerProfile } from '../systems/types.js';
import type { BenchPayload } from '../workers/child.js';

/**
 * A migrated pgdispatch database holding `size` waiting jobs, vacuumed and analysed (the state
 * autovacuum leaves a long-lived backlog in), used as a template: each measurement clones it.
 */
export async function makeBacklogTemplate(ctx: BenchContext, size: number, label: string): Promise<{ name: string; drop(): Promise<void> }> {
  const db = await createBenchDb(ctx.target, `tpl_${label}`);
  await installPgdispatch(ctx, db);
  const chunk = 5000;
  const writers = 2;
  const enqs = await Promise.all(Array.from({ length: writers }, () => openEngineEnqueuer(ctx, db)));
  let next = 0;
  await Promise.all(
    enqs.map(async (enq) => {
      for (;;) {
        const start = next;
        if (start >= size) break;
        next += chunk;
        const payloads: BenchPayload[] = [];
        for (let i = start; i < Math.min(size, start + chunk); i++) payloads.push({ i });
        await enq.bulk(payloads);
      }
      await enq.close();
    }),
  );
  await db.sql.unsafe('vacuum analyze');
  await db.sql.end({ timeout: 5 });
  return { name: db.name, drop: () => dropDatabase(ctx.target, db.name) };
}

export interface BacklogResult {
  /** Completions per second between the first and the `timed`-th completion (finished_at, database clock). */
  rate: number;
  timed: number;
}

/** Reads pgdispatch's finished_at column (bench read only; the engine writes it). */
async function finishedCount(db: BenchDb): Promise<number> {
  const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where finished_at is not null`;
  return r?.n ?? 0;
}

export async function measureBacklog(ctx: BenchContext, profile: WorkerProfile, template: string, opts: { timed: number; concurrency: number; timeoutMs: number }): Promise<BacklogResult> {
  const db = await createBenchDb(ctx.target, `backlog_${profile.id}`, { template });
  try {
    const w = await profile.start(ctx, db, { concurrency: opts.concurrency });
    try {
      const t0 = performance.now();
      await w.go();
      while ((await finishedCount(db)) < opts.timed) {
        if (performance.now() - t0 > opts.timeoutMs) throw new Error(`backlog: ${opts.timed} completions not reached in ${opts.timeoutMs} ms`);
        await sleep(25);
      }
    } finally {
      await w.stop();
    }
    const [r] = await db.sql<{ first: number; span: number; n: number }[]>`
      with f as (select finished_at from jobs where finished_at is not null order by finished_at limit ${opts.timed})
      select count(*) filter (where finished_at = (select min(finished_at) from f))::int as first,
             extract(epoch from max(finished_at) - min(finished_at))::float8 as span, count(*)::int as n
        from f`;
    if (!r || r.span <= 0) throw new Error('backlog: no completion span to time');
    return { rate: (r.n - r.first) / r.span, timed: r.n };
  } finally {
    await db.drop();
  }
}
