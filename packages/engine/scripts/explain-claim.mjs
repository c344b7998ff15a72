#!/usr/bin/env node
// Measures jobClaim's statement on a 1M-job backlog.
//
//   npm run build && node packages/engine/scripts/explain-claim.mjs postgres://postgres@127.0.0.1:5432
//
// Creates a scratch database on that server, migrates it with the built migrator, inserts
// 1,000,000 queued jobs (10 queues, priorities 0–4, run_at spread over the past hour) with one
// INSERT … SELECT generate_series, ANALYZEs, then prints EXPLAIN (ANALYZE, BUFFERS) of the exact
// claim statements exported by dist/queries/job-claim.js with limit 100. Every EXPLAIN runs in a
// transaction that is rolled back, so each one sees the same 1M waiting jobs. Each plan is run
// once to warm the cache and printed from the second run. The scratch database is dropped at the end.
//
// Second backlog (task routing, the paused-queue trap of docs/architecture.md §5 applied to tasks):
// the jobs are replaced by 1,000,000 others, 600,000 of a task `report.v2` that no worker knows
// yet (a rolling deploy) at priority 0, so they sort first, and 400,000 `noop` jobs at priorities
// 1–4, spread over the same 10 queues independently of the task. The worker declares `noop`.
import { randomBytes } from 'node:crypto';
import { createDb, closeDb } from '../dist/db.js';
import { migrate } from '../dist/migrator.js';
import {
  CLAIM_ALL_SQL,
  CLAIM_LIMITED_SQL,
  CLAIM_LISTED_SQL,
  CLAIM_LISTED_TASKS_SQL,
  CLAIM_TASKS_EXCEPT_SQL,
  CLAIM_TASKS_SQL,
} from '../dist/queries/job-claim.js';

const serverUrl = process.argv[2];
if (!serverUrl) {
  console.error('usage: node packages/engine/scripts/explain-claim.mjs <postgres server url>');
  process.exit(2);
}
const ROWS = Number(process.argv[3] ?? 1_000_000);
const LIMIT = 100;
const LEASE_MS = 30_000;

const dbName = `pgdispatch_explain_${randomBytes(4).toString('hex')}`;
const admin = createDb({ url: serverUrl, max: 1, applicationName: 'pgdispatch-explain' });
const scratchUrl = (() => {
  const u = new URL(serverUrl);
  u.pathname = `/${dbName}`;
  return u.toString();
})();

class Rollback extends Error {}

/** Runs `fn` in a transaction that is always rolled back; returns what fn returned. */
async function rolledBack(sql, fn) {
  let out;
  await sql
    .begin(async (tx) => {
      out = await fn(tx);
      throw new Rollback();
    })
    .catch((err) => {
      if (!(err instanceof Rollback)) throw err;
    });
  return out;
}

const planText = (rows) => rows.map((r) => r['QUERY PLAN']).join('\n');

async function explain(sql, title, text, params, { genericTypes } = {}) {
  const run = () =>
    rolledBack(sql, async (tx) => {
      if (!genericTypes) return planText(await tx.unsafe(`explain (analyze, buffers) ${text}`, params));
      // A prepared statement with plan_cache_mode = force_generic_plan shows the plan postgres.js
      // gets once Postgres switches its named prepared statement to a generic plan.
      await tx.unsafe('set local plan_cache_mode = force_generic_plan');
      await tx.unsafe(`prepare claim_generic (${genericTypes}) as ${text}`);
      try {
        const lit = params.map((p) => (p === null ? 'null' : Array.isArray(p) ? `'{${p.join(',')}}'` : String(p))).join(', ');
        return planText(await tx.unsafe(`explain (analyze, buffers) execute claim_generic(${lit})`));
      } finally {
        await tx.unsafe('deallocate claim_generic');
      }
    });
  await run(); // warm the cache
  console.log(`\n=== ${title} ===\n${await run()}`);
}

try {
  await admin.unsafe(`create database ${dbName}`);
  const sql = createDb({ url: scratchUrl, max: 1, applicationName: 'pgdispatch-explain' });
  try {
    await migrate(sql);
    const [{ version }] = await sql`select current_setting('server_version') as version`;
    const t0 = Date.now();
    await sql`insert into queues (name) select 'q' || g from generate_series(0, 9) g`;
    await sql`
      insert into jobs (queue, task, payload, priority, run_at)
      select 'q' || (g % 10), 'noop', jsonb_build_object('n', g), (g % 5)::smallint,
             now() - ((g % 3600) * interval '1 second')
        from generate_series(1, ${ROWS}) g`;
    const insertMs = Date.now() - t0;
    await sql`analyze jobs`;
    await sql`analyze queues`;
    const [{ size }] = await sql`select pg_size_pretty(pg_total_relation_size('jobs')) as size`;
    console.log(`PostgreSQL ${version}; ${ROWS.toLocaleString('en')} queued jobs inserted in ${insertMs} ms; jobs table + indexes ${size}`);

    await explain(sql, `jobClaim({ queues: '*', limit: ${LIMIT} }) — CLAIM_ALL_SQL`, CLAIM_ALL_SQL, [LIMIT, LEASE_MS]);
    await explain(sql, `jobClaim({ queues: ['q3'], limit: ${LIMIT} }) — CLAIM_LISTED_SQL`, CLAIM_LISTED_SQL, [['q3'], LIMIT, LEASE_MS]);
    await explain(sql, `jobClaim({ queues: ['q3', 'q7'], limit: ${LIMIT} }) — CLAIM_LISTED_SQL, generic plan`, CLAIM_LISTED_SQL, [['q3', 'q7'], LIMIT, LEASE_MS], {
      genericTypes: 'text[], bigint, float8',
    });
    await explain(sql, `claim of a queue with a concurrency limit (room ${LIMIT}) — CLAIM_LIMITED_SQL`, CLAIM_LIMITED_SQL, [LIMIT, LEASE_MS, 'q3']);

    // ---- task routing: 600k jobs of a task nobody knows sort before the known task's 400k ----
    await sql`truncate jobs cascade`;
    const t1 = Date.now();
    await sql`
      insert into jobs (queue, task, payload, priority, run_at)
      select 'q' || ((g / 10) % 10),
             case when g % 10 < 6 then 'report.v2' else 'noop' end,
             jsonb_build_object('n', g),
             (case when g % 10 < 6 then 0 else 1 + g % 4 end)::smallint,
             now() - ((g % 3600) * interval '1 second')
        from generate_series(1, ${ROWS}) g`;
    await sql`analyze jobs`;
    const counts = await sql`select task, count(*)::int as n, min(priority) as lo, max(priority) as hi from jobs group by task order by task`;
    console.log(
      `\n--- routing backlog: ${ROWS.toLocaleString('en')} jobs in ${Date.now() - t1} ms: ` +
        counts.map((c) => `${c.task} ${c.n.toLocaleString('en')} (priority ${c.lo}–${c.hi})`).join(', ') + ' ---',
    );
    const naive = CLAIM_ALL_SQL.replace("run_at <= now()", "run_at <= now() and task = any($3::text[])");
    await explain(sql, `before: tasks ['noop'] as a filter on jobs_claim_idx (task = any($3))`, naive, [LIMIT, LEASE_MS, ['noop']]);
    const pairs = CLAIM_LISTED_TASKS_SQL.replace('unnest($2::text[]) as t(name)', 'unnest($1::text[]) as q(name) cross join unnest($2::text[]) as t(name)').replace(
      'task = t.name and queue = any($1::text[])',
      'queue = q.name and task = t.name',
    );
    await explain(sql, `before: queues ['q3', 'q7'] × tasks ['noop', 'email.send'] as one range per (queue, task) pair`, pairs, [
      ['q3', 'q7'], ['noop', 'email.send'], LIMIT, LEASE_MS,
    ]);
    await explain(sql, `jobClaim({ queues: '*', tasks: ['noop'] }) — CLAIM_TASKS_SQL`, CLAIM_TASKS_SQL, [['noop'], LIMIT, LEASE_MS]);
    await explain(sql, `jobClaim({ queues: '*', tasks: ['noop', 'email.send'] }) — CLAIM_TASKS_SQL, one declared task without jobs`, CLAIM_TASKS_SQL, [
      ['noop', 'email.send'], LIMIT, LEASE_MS,
    ]);
    await explain(sql, `CLAIM_TASKS_SQL (['noop', 'email.send']), forced generic plan`, CLAIM_TASKS_SQL, [['noop', 'email.send'], LIMIT, LEASE_MS], {
      genericTypes: 'text[], bigint, float8',
    });
    await explain(sql, `jobClaim({ queues: '*', tasks: ['noop'] }) while q9 is paused — CLAIM_TASKS_EXCEPT_SQL`, CLAIM_TASKS_EXCEPT_SQL, [
      ['noop'], LIMIT, LEASE_MS, ['q9'],
    ]);
    await explain(sql, `jobClaim({ queues: ['q3'], tasks: ['noop'] }) — CLAIM_LISTED_TASKS_SQL (also a limited queue's claim)`, CLAIM_LISTED_TASKS_SQL, [
      ['q3'], ['noop'], LIMIT, LEASE_MS,
    ]);
    await explain(sql, `jobClaim({ queues: ['q3', 'q7'], tasks: ['noop', 'email.send'] }) — CLAIM_LISTED_TASKS_SQL`, CLAIM_LISTED_TASKS_SQL, [
      ['q3', 'q7'], ['noop', 'email.send'], LIMIT, LEASE_MS,
    ]);
    await explain(sql, `jobClaim({ queues: ['q3'], tasks: ['report.v2'] }) — CLAIM_LISTED_TASKS_SQL, a task spread over every queue`, CLAIM_LISTED_TASKS_SQL, [
      ['q3'], ['report.v2'], LIMIT, LEASE_MS,
    ]);
  } finally {
    await closeDb(sql);
  }
} finally {
  await admin.unsafe(`drop database if exists ${dbName} with (force)`);
  await closeDb(admin);
}
