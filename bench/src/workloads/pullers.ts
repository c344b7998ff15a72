import { closeDb, createDb, type Sql } from '@pgdispatch/engine/db';
import { jobClaim } from '@pgdispatch/engine/queries/job-claim';
import { postJson } from '../lib/http.js';
import { createBenchDb, waitForNoSessions, type BenchDb } from '../lib/pg-target.js';
import { sleep } from '../lib/stats.js';
import { startServerProcess, WORKER_KEY } from '../systems/pgdispatch-server.js';
import type { BenchContext } from '../systems/types.js';

export type PullerMode = 'batch' | 'direct';

export interface PullerResult {
  pullers: number;
  /** Database connections the pullers used (direct mode may be capped by max_connections). */
  connections: number;
  claimed: number;
  seconds: number;
  jobsPerSec: number;
  /** Claim statements (the SKIP LOCKED ones) per second, from pg_stat_statements; NaN without it. */
  claimStatementsPerSec: number;
  /**
   * Rows read by scans of `jobs` per claimed job: sequential-scan rows plus index entries of every
   * index but the primary key (the claim's update joins through it once per job). A claim that
   * walks its index reads ~1–2; contention between claimers, or a plan that scans the table, shows
   * up here.
   */
  rowsScannedPerJob: number;
  /** Shared buffers touched by claim statements per claimed job (pg_stat_statements); NaN without it. */
  buffersPerJob: number;
}

/**
 * `pullers` concurrent loops, each asking for `batch` jobs at a time, for `seconds`, against a deep
 * backlog (a clone of `template`). Claims only: no completions, so the figures isolate the claim
 * path. batch = HTTP POST /internal/v1/dequeue on one api process (the dispatcher coalesces them
 * into one claim statement per round); direct = each puller runs the engine's jobClaim (one
 * SKIP LOCKED statement) on its own connection. Statistics are read after every puller
 * connection has closed: backends flush them on exit.
 */
export async function measurePullers(ctx: BenchContext, mode: PullerMode, pullers: number, template: string, opts: { batch: number; seconds: number }): Promise<PullerResult> {
  const db = await createBenchDb(ctx.target, `pull_${mode}_${pullers}`, { template });
  try {
    const run = mode === 'batch' ? await batchPullers(ctx, db, pullers, opts) : await directPullers(ctx, db, pullers, opts);
    await waitForNoSessions(ctx.target, db.name);
    return { ...run, ...(await claimStats(ctx, db, run.seconds)) };
  } finally {
    await db.drop();
  }
}

interface RunFigures {
  pullers: number;
  connections: number;
  seconds: number;
}

async function timed(pullers: number, seconds: number, pull: (i: number) => Promise<void>): Promise<number> {
  let stopped = false;
  const t0 = performance.now();
  const timer = setTimeout(() => (stopped = true), seconds * 1000);
  await Promise.all(
    Array.from({ length: pullers }, async (_, i) => {
      while (!stopped) await pull(i);
    }),
  );
  clearTimeout(timer);
  return (performance.now() - t0) / 1000;
}

async function directPullers(ctx: BenchContext, db: BenchDb, pullers: number, opts: { batch: number; seconds: number }): Promise<RunFigures> {
  const [used] = await db.sql<{ n: number }[]>`select count(*)::int as n from pg_stat_activity`;
  const room = Math.max(1, ctx.target.maxConnections - (used?.n ?? 0) - 10);
  const connections = Math.min(pullers, room);
  if (connections < pullers) ctx.log(`  direct: ${pullers} pullers share ${connections} connections (max_connections ${ctx.target.maxConnections})`);
  const pools: Sql[] = Array.from({ length: connections }, () => createDb({ url: db.url, max: 1, applicationName: 'pgdispatch-bench-puller' }));
  try {
    await Promise.all(pools.map((p) => p`select 1`));
    const seconds = await timed(pullers, opts.seconds, async (i) => {
      await jobClaim(pools[i % connections] as Sql, { queues: '*', limit: opts.batch, leaseMs: 600_000 });
    });
    return { pullers, connections, seconds };
  } finally {
    await Promise.all(pools.map((p) => closeDb(p, 1)));
  }
}

async function batchPullers(ctx: BenchContext, db: BenchDb, pullers: number, opts: { batch: number; seconds: number }): Promise<RunFigures> {
  const api = await startServerProcess(ctx, { role: 'api', db, name: `pullers-api-${pullers}` });
  try {
    const url = `${api.url}/internal/v1/dequeue`;
    const body = { queues: '*', max: opts.batch, waitMs: 1000 };
    const headers = { authorization: `Bearer ${WORKER_KEY}` };
    // One empty dequeue per puller opens its keep-alive connection before the window.
    await Promise.all(Array.from({ length: pullers }, () => postJson(url, { queues: ['warmup'], max: 1, waitMs: 0 }, headers)));
    const seconds = await timed(pullers, opts.seconds, async () => {
      const res = await postJson(url, body, headers);
      if (res.status !== 200) throw new Error(`dequeue: ${res.status} ${res.body.slice(0, 300)}`);
      JSON.parse(res.body);
    });
    const [conns] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity where datname = ${db.name} and application_name <> 'pgdispatch-bench'`;
    return { pullers, connections: conns?.n ?? Number.NaN, seconds };
  } finally {
    await api.child.stop();
  }
}

async function claimStats(ctx: BenchContext, db: BenchDb, seconds: number): Promise<Omit<PullerResult, keyof RunFigures>> {
  await sleep(50);
  // Scan statistics first: the bench's own count below must not be part of them.
  const [scan] = await db.sql<{ rows: number }[]>`
    select coalesce((select seq_tup_read from pg_stat_user_tables where relname = 'jobs'), 0)::float8
         + coalesce((select sum(idx_tup_read) from pg_stat_user_indexes where relname = 'jobs' and indexrelname <> 'jobs_pkey'), 0)::float8 as rows`;
  const [c] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where state = 'running'`;
  const claimed = c?.n ?? 0;
  let claimStatementsPerSec = Number.NaN;
  let buffersPerJob = Number.NaN;
  if (ctx.target.pgss) {
    const admin = createDb({ url: ctx.target.adminUrl, max: 1, applicationName: 'pgdispatch-bench' });
    try {
      const [s] = await admin<{ calls: number; blks: number }[]>`
        select coalesce(sum(calls), 0)::float8 as calls, coalesce(sum(shared_blks_hit + shared_blks_read), 0)::float8 as blks
          from pg_stat_statements
         where dbid = (select oid from pg_database where datname = ${db.name}) and query ilike '%skip locked%'`;
      claimStatementsPerSec = (s?.calls ?? 0) / seconds;
      buffersPerJob = claimed > 0 ? (s?.blks ?? 0) / claimed : Number.NaN;
    } finally {
      await closeDb(admin);
    }
  }
  return {
    claimed,
    jobsPerSec: claimed / seconds,
    claimStatementsPerSec,
    rowsScannedPerJob: claimed > 0 ? (scan?.rows ?? 0) / claimed : Number.NaN,
    buffersPerJob,
  };
}
