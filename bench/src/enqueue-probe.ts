import { readFile } from 'node:fs/promises';
import { closeDb, createDb } from '@pgdispatch/engine/db';
import { jobEnqueue, jobEnqueueMany, jobEnqueueManyIds } from '@pgdispatch/engine/queries/job-enqueue';
import { postJson } from './lib/http.js';
import { createBenchDb, openTarget, type BenchDb, type PgTarget } from './lib/pg-target.js';
import { installPgdispatch } from './systems/pgdispatch-engine.js';
import { API_KEY, startServerProcess } from './systems/pgdispatch-server.js';
import { QUEUE, TASK } from './systems/types.js';

/**
 * Per-request costs of the enqueue routes that load on a shared machine does not distort: the
 * api process's CPU time per request (utime+stime from /proc), and statements, transactions and
 * server execution time per request (pg_stat_statements, pg_stat_database), next to the engine
 * called directly. Latency is printed too, but it is the noisy figure.
 *
 *   npx tsx bench/src/enqueue-probe.ts            # embedded PostgreSQL 18 (pg_stat_statements on)
 *   BENCH_DATABASE_URL=postgres://… npx tsx bench/src/enqueue-probe.ts
 *   PROBE_SINGLE=2000 PROBE_BATCHES=20 PROBE_CONCURRENCY=8 PROBE_BULK=jobs PROBE_ONLY=http …
 */

const SINGLE = Number(process.env.PROBE_SINGLE ?? 2000);
const BATCHES = Number(process.env.PROBE_BATCHES ?? 20);
const CONC = Number(process.env.PROBE_CONCURRENCY ?? 1);
/** ids (default): jobEnqueueManyIds and ?return=ids, as the bench; jobs: full rows on both sides. */
const BULK = process.env.PROBE_BULK === 'jobs' ? 'jobs' : 'ids';
const BATCH_QUERY = BULK === 'ids' ? '?return=ids' : '';

const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

async function procCpuUs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (process.env.PROBE_VERBOSE) console.log(`    pid ${pid}: utime ${Number(f[11]) * TICK_US / 1000} ms, stime ${Number(f[12]) * TICK_US / 1000} ms`);
  return (Number(f[11]) + Number(f[12])) * TICK_US; // utime, stime
}

interface DbCounters {
  xacts: number;
  calls: number;
  execMs: number;
}

async function counters(target: PgTarget, db: BenchDb): Promise<DbCounters> {
  const admin = createDb({ url: target.adminUrl, max: 1, applicationName: 'pgdispatch-probe' });
  try {
    // Backends flush pg_stat_database counters at most once a second, and 1 s after going idle.
    await new Promise((r) => setTimeout(r, 1_200));
    const [x] = await admin<{ n: number }[]>`select xact_commit::float8 as n from pg_stat_database where datname = ${db.name}`;
    let calls = NaN;
    let execMs = NaN;
    if (target.pgss) {
      const [s] = await admin<{ calls: number; ms: number }[]>`
        select coalesce(sum(calls), 0)::float8 as calls, coalesce(sum(total_exec_time), 0)::float8 as ms
          from pg_stat_statements where dbid = (select oid from pg_database where datname = ${db.name})`;
      calls = s!.calls;
      execMs = s!.ms;
    }
    if (target.pgss && process.env.PROBE_VERBOSE === '2') {
      const top = await admin<{ calls: number; ms: number; query: string }[]>`
        select calls::float8 as calls, total_exec_time::float8 as ms, query
          from pg_stat_statements where dbid = (select oid from pg_database where datname = ${db.name}) order by calls desc limit 8`;
      for (const t of top) console.log(`    ${String(t.calls).padStart(7)} calls ${t.ms.toFixed(1).padStart(9)} ms  ${t.query.replace(/\s+/g, ' ').slice(0, 100)}`);
    }
    return { xacts: x!.n, calls, execMs };
  } finally {
    await closeDb(admin);
  }
}

async function runConcurrent(total: number, conc: number, fn: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < total) await fn(next++);
  }));
  return performance.now() - t0;
}

function line(label: string, n: number, ms: number, cpuUs: number, before: DbCounters, after: DbCounters, per: number): void {
  const d = (k: keyof DbCounters) => (after[k] - before[k]) / n;
  console.log(
    `${label.padEnd(22)} ${(n / (ms / 1000)).toFixed(0).padStart(8)} jobs/s  latency ${(ms / (n / per)).toFixed(3)} ms/call` +
      `  cpu ${(cpuUs / n).toFixed(1)} µs/job  statements ${d('calls').toFixed(3)}/job  xacts ${d('xacts').toFixed(3)}/job  exec ${(d('execMs') * 1000).toFixed(1)} µs/job`,
  );
}

async function main(): Promise<void> {
  const target = await openTarget(process.env.BENCH_DATABASE_URL, (m) => console.error(m));
  const ctx = { target, log: (m: string) => console.error(m), nodeArgs: process.env.PROBE_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROBE_CPU_PROF}`] : [] };
  console.log(`PostgreSQL ${target.version}, pg_stat_statements ${target.pgss ? 'on' : 'off'}; single N=${SINGLE} at concurrency ${CONC}, ${BATCHES} batches of 1000 answered with ${BULK}`);
  try {
    // Engine, called directly (CPU is this process's: the client side included).
    if (process.env.PROBE_ONLY !== 'http') {
      const db = await createBenchDb(target, 'probe_engine');
      await installPgdispatch(ctx, db);
      const sql = createDb({ url: db.url, max: Math.max(2, CONC), applicationName: 'pgdispatch-bench-enqueue' });
      for (let i = 0; i < 50; i++) await jobEnqueue(sql, { queue: QUEUE, task: TASK, payload: { i } });
      let b = await counters(target, db);
      let c0 = process.cpuUsage();
      let ms = await runConcurrent(SINGLE, CONC, (i) => jobEnqueue(sql, { queue: QUEUE, task: TASK, payload: { i } }).then(() => undefined));
      let c = process.cpuUsage(c0);
      if (process.env.PROBE_VERBOSE) console.log(`    engine single: user ${(c.user / SINGLE).toFixed(0)} µs/job, system ${(c.system / SINGLE).toFixed(0)} µs/job`);
      line('engine single', SINGLE, ms, c.user + c.system, b, await counters(target, db), CONC);
      b = await counters(target, db);
      c0 = process.cpuUsage();
      ms = await runConcurrent(BATCHES, 1, async (k) => {
        await (BULK === 'ids' ? jobEnqueueManyIds : jobEnqueueMany)(sql, { items: Array.from({ length: 1000 }, (_, i) => ({ queue: QUEUE, task: TASK, payload: { i: k * 1000 + i } })) });
      });
      c = process.cpuUsage(c0);
      line('engine bulk', BATCHES * 1000, ms, c.user + c.system, b, await counters(target, db), 1000);
      await closeDb(sql);
      await db.drop();
    }
    // HTTP, against a DISPATCH_ROLE=api process (CPU is that process's).
    if (process.env.PROBE_ONLY !== 'engine') {
      const db = await createBenchDb(target, 'probe_http');
      await installPgdispatch(ctx, db);
      const api = await startServerProcess(ctx, { role: 'api', db, name: 'probe-api' });
      try {
        const one = `${api.url}/v1/queues/${QUEUE}/jobs`;
        const batch = `${api.url}/v1/queues/${QUEUE}/jobs/batch${BATCH_QUERY}`;
        const post = async (url: string, body: unknown) => {
          const r = await postJson(url, body, { authorization: `Bearer ${API_KEY}` });
          if (r.status !== 201 && r.status !== 200) throw new Error(`${url}: ${r.status} ${r.body.slice(0, 200)}`);
        };
        for (let i = 0; i < 200; i++) await post(one, { task: TASK, payload: { i } });
        for (let i = 0; i < 3; i++) await post(batch, { jobs: Array.from({ length: 1000 }, (_, j) => ({ task: TASK, payload: { j } })) });
        let b = await counters(target, db);
        let c0 = await procCpuUs(api.child.pid);
        let ms = await runConcurrent(SINGLE, CONC, (i) => post(one, { task: TASK, payload: { i } }));
        line('http single', SINGLE, ms, (await procCpuUs(api.child.pid)) - c0, b, await counters(target, db), CONC);
        b = await counters(target, db);
        c0 = await procCpuUs(api.child.pid);
        ms = await runConcurrent(BATCHES, 1, async (k) => {
          await post(batch, { jobs: Array.from({ length: 1000 }, (_, i) => ({ task: TASK, payload: { i: k * 1000 + i } })) });
        });
        line('http bulk', BATCHES * 1000, ms, (await procCpuUs(api.child.pid)) - c0, b, await counters(target, db), 1000);
      } finally {
        await api.child.stop();
        await db.drop();
      }
    }
  } finally {
    await target.stop();
  }
}

await main();
