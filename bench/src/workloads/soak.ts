import { createBenchDb, type BenchDb } from '../lib/pg-target.js';
import { sleep, wallMs } from '../lib/stats.js';
import { THROUGHPUT_ENV } from '../systems/pgdispatch-all.js';
import { openEngineEnqueuer, pgdispatchRemaining } from '../systems/pgdispatch-engine.js';
import { installPaused, resume, startServerProcess } from '../systems/pgdispatch-server.js';
import type { BenchContext } from '../systems/types.js';
import type { BenchPayload } from '../workers/child.js';
import { jobsDue, sampleEvery, sampleMs, soakParts, soakVerdict, tickMs, type ProgressSample, type SoakPart } from './soak-stats.js';

/**
 * Soak: `n` jobs through pgdispatch `all (throughput)` at a steady offered rate (a fraction of the
 * measured maximum), with retention set short so the purge runs as it goes. Shows whether
 * throughput, pickup and the size of the `jobs` table hold as work accumulates.
 */
export interface SoakOptions {
  n: number;
  /** Offered jobs/s. */
  rate: number;
  concurrency: number;
  /** RETENTION_SECONDS and EVENT_RETENTION_SECONDS of the server. */
  retentionSeconds: number;
  /** performance.now() by which everything (drain included) must be over. */
  deadline: number;
}

export interface SoakResult {
  offeredRate: number;
  /** Jobs offered (fewer than n when the time budget ran out). */
  offered: number;
  completed: number;
  /** Offered jobs over the enqueue phase, per second (below offeredRate when bulk inserts lag). */
  enqueueRate: number;
  /** Window start → every offered job finished (or the deadline), seconds. */
  seconds: number;
  parts: SoakPart[];
  /**
   * pg_total_relation_size('jobs') (heap, indexes, TOAST) right after 10% of the jobs completed, and
   * at the end. A run cut short before 10% of n takes the size sampled nearest 10% of what finished.
   */
  sizeFirst: number;
  sizeEnd: number;
  /** Rows in `jobs` at those two moments (retention at work when they stop growing). */
  rowsFirst: number;
  rowsEnd: number;
  /** pg_database_size at the end (job_events and everything else included). */
  dbSizeEnd: number;
  /** `job_events` with every partition (heap, indexes) at the end; absent in runs saved before it was measured. */
  eventsSizeEnd?: number;
  verdict: ReturnType<typeof soakVerdict>;
  /** Set when the run was cut short, saying why. */
  note?: string;
}

/** Bench reads of the database (never writes): sizes and row counts of pgdispatch's table. */
async function jobsSize(db: BenchDb): Promise<number> {
  const [r] = await db.sql<{ b: number }[]>`select pg_total_relation_size('jobs')::float8 as b`;
  return r?.b ?? Number.NaN;
}

/** job_events and its partitions (a partitioned table's own size is 0). */
async function eventsSize(db: BenchDb): Promise<number> {
  const [r] = await db.sql<{ b: number }[]>`
    select (pg_total_relation_size('job_events') + coalesce((select sum(pg_total_relation_size(inhrelid)) from pg_inherits
             where inhparent = 'job_events'::regclass), 0))::float8 as b`;
  return r?.b ?? Number.NaN;
}

async function jobsRows(db: BenchDb): Promise<number> {
  const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs`;
  return r?.n ?? Number.NaN;
}

export async function measureSoak(ctx: BenchContext, o: SoakOptions): Promise<SoakResult> {
  const db = await createBenchDb(ctx.target, 'soak');
  try {
    await installPaused(ctx, db);
    const retention = String(o.retentionSeconds);
    const server = await startServerProcess(ctx, {
      role: 'all',
      db,
      concurrency: o.concurrency,
      env: { ...THROUGHPUT_ENV, RETENTION_SECONDS: retention, EVENT_RETENTION_SECONDS: retention },
      name: 'all-soak',
    });
    const enq = await openEngineEnqueuer(ctx, db);
    try {
      const offset = await server.child.clockOffset();
      const every = sampleEvery(o.n);
      const sentAt = new Map<number, number>();
      /** When the bulk call of each marked job returned (its commit): splits pickup into ack and after. */
      const ackedAt = new Map<number, number>();
      // Keep a drain reserve: stop offering early enough that the backlog can still finish in budget.
      const stopOffering = o.deadline - Math.min(60_000, 0.1 * (o.deadline - performance.now()));
      let acked = 0;
      let offerEnd = 0;
      let note: string | undefined;
      await resume(db);
      const t0 = performance.now();

      const enqueuer = (async () => {
        const tick = tickMs(o.n, o.rate);
        while (acked < o.n) {
          if (performance.now() > stopOffering) {
            note = `time budget ran out: ${acked.toLocaleString('en-US')} of ${o.n.toLocaleString('en-US')} jobs offered`;
            break;
          }
          const due = jobsDue(performance.now() - t0, o.rate, o.n);
          const k = Math.min(due - acked, 5000);
          if (k <= 0) {
            await sleep(tick);
            continue;
          }
          const chunk: BenchPayload[] = [];
          const marked: number[] = [];
          const start = wallMs();
          for (let i = acked; i < acked + k; i++) {
            if (i % every === 0) {
              chunk.push({ i, m: 1 });
              marked.push(i);
              sentAt.set(i, start);
            } else chunk.push({ i });
          }
          await enq.bulk(chunk);
          const done = wallMs();
          for (const i of marked) ackedAt.set(i, done);
          acked += k;
        }
        offerEnd = performance.now();
      })();

      const samples: ProgressSample[] = [];
      let sizeFirst = Number.NaN;
      let rowsFirst = Number.NaN;
      const period = sampleMs(o.n, o.rate);
      let lastSized = -Infinity;
      let offering = true;
      void enqueuer.finally(() => (offering = false));
      for (;;) {
        const ackedBefore = acked;
        // Progress is the server's handler ends (its task counts them), not a count of the jobs
        // still unfinished: that count took 310–450 ms at a 1.5M backlog (PostgreSQL 15, quiet
        // machine) and ran every 250 ms, i.e. it kept one of the two cores busy exactly when the
        // backlog was largest (the 3 December soak: 1,322 jobs/s in its first 10%, 6,481 in its last).
        const completed = Math.max(samples.at(-1)?.completed ?? 0, await server.child.handled());
        const backlog = Math.max(0, ackedBefore - completed);
        const t = performance.now() - t0;
        const sample: ProgressSample = { t, completed, backlog };
        if (t - lastSized >= 1000) {
          sample.jobsBytes = await jobsSize(db);
          lastSized = t;
        }
        samples.push(sample);
        if (Number.isNaN(sizeFirst) && completed >= o.n / 10) {
          sizeFirst = await jobsSize(db);
          rowsFirst = await jobsRows(db);
        }
        // Every handler ended: the database confirms nothing is left (a cheap count by now).
        if (!offering && completed >= acked && (await pgdispatchRemaining(db)) === 0) break;
        if (performance.now() > o.deadline) {
          note = `${note ? `${note}; ` : ''}time budget ran out with ${backlog.toLocaleString('en-US')} jobs not finished`;
          break;
        }
        await sleep(period);
      }
      await enqueuer;
      const seconds = samples.at(-1) ? (samples.at(-1) as ProgressSample).t / 1000 : 0;
      const completed = samples.at(-1)?.completed ?? 0;
      const sizeEnd = await jobsSize(db);
      const rowsEnd = await jobsRows(db);
      const eventsSizeEnd = await eventsSize(db);
      const [d] = await db.sql<{ b: number }[]>`select pg_database_size(current_database())::float8 as b`;
      const pickups: { i: number; ms: number; afterAckMs: number }[] = [];
      for (const [i, sent] of sentAt) {
        const started = server.child.marks.get(i);
        if (started !== undefined) pickups.push({ i, ms: started - offset - sent, afterAckMs: started - offset - (ackedAt.get(i) ?? Number.NaN) });
      }
      if (Number.isNaN(sizeFirst)) {
        // Cut short before 10% of n finished: the once-a-second size sample nearest 10% of what did.
        const tenth = samples.filter((x) => x.jobsBytes !== undefined && x.completed >= completed / 10)[0];
        sizeFirst = tenth?.jobsBytes ?? Number.NaN;
        rowsFirst = tenth ? tenth.completed + tenth.backlog : Number.NaN;
      }
      const parts = soakParts(samples, pickups, completed);
      return {
        offeredRate: o.rate,
        offered: acked,
        completed,
        enqueueRate: acked / ((offerEnd - t0) / 1000),
        seconds,
        parts,
        sizeFirst,
        sizeEnd,
        rowsFirst,
        rowsEnd,
        dbSizeEnd: d?.b ?? Number.NaN,
        eventsSizeEnd,
        verdict: soakVerdict(parts, sizeFirst, sizeEnd),
        ...(note ? { note } : {}),
      };
    } finally {
      await enq.close();
      await server.child.stop();
    }
  } finally {
    await db.drop();
  }
}
