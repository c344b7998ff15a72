#!/usr/bin/env node
// Measures the dashboard's two statistics reads on a large jobs table.
//
//   npm run build && node packages/engine/scripts/measure-overview.mjs postgres://postgres@127.0.0.1:5432 [rows]
//
// Creates a scratch database, migrates it, inserts `rows` jobs (default 1,000,000) over 10 queues
// with one INSERT … SELECT: 90 % succeeded and 5 % failed with finished_at spread evenly over the
// last 24 h (the default retention), 5 % queued; VACUUM ANALYZEs (as autovacuum would); then times queueOverview and
// jobThroughput (the default hour of 60 one-minute buckets) from dist/, 5 runs each after a warm-up,
// printing the median and the rows they read. The scratch database is dropped at the end.
import { randomBytes } from 'node:crypto';
import { createDb } from '../dist/db.js';
import { migrate } from '../dist/migrator.js';
import { jobThroughput, queueOverview } from '../dist/queries/queue-overview.js';

const serverUrl = process.argv[2];
if (!serverUrl) {
  console.error('usage: node packages/engine/scripts/measure-overview.mjs <postgres server url> [rows]');
  process.exit(2);
}
const ROWS = Number(process.argv[3] ?? 1_000_000);
const dbName = `pgdispatch_overview_${randomBytes(4).toString('hex')}`;
const admin = createDb({ url: serverUrl, max: 1, applicationName: 'pgdispatch-measure' });
const scratchUrl = Object.assign(new URL(serverUrl), { pathname: `/${dbName}` }).toString();

async function median(fn, runs = 5) {
  await fn();
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(runs / 2)];
}

try {
  await admin.unsafe(`create database ${dbName}`);
  const sql = createDb({ url: scratchUrl, max: 4, applicationName: 'pgdispatch-measure' });
  try {
    await migrate(sql);
    const [{ version }] = await sql`select current_setting('server_version') as version`;
    await sql`insert into queues (name) select 'q' || g from generate_series(0, 9) g`;
    await sql`
      insert into jobs (queue, task, state, run_at, finished_at)
      select 'q' || (g % 10), 'noop',
             case when g % 20 = 0 then 'queued' when g % 20 = 1 then 'failed' else 'succeeded' end,
             now() - (g::float8 / ${ROWS}) * interval '24 hours',
             case when g % 20 = 0 then null else now() - (g::float8 / ${ROWS}) * interval '24 hours' end
        from generate_series(1, ${ROWS}) g`;
    await sql`vacuum analyze jobs`; // as autovacuum would: sets the visibility map, so counts can be index-only scans
    const [{ lastHour }] = await sql`select count(*)::int as "lastHour" from jobs where finished_at > now() - interval '1 hour'`;
    const overviewMs = await median(() => queueOverview(sql));
    const throughputMs = await median(() => jobThroughput(sql));
    const tp = await jobThroughput(sql);
    const perMinute = Object.values(tp.queues).reduce((a, q) => a + q.succeeded.reduce((x, y) => x + y, 0) + q.failed.reduce((x, y) => x + y, 0), 0);
    console.log(`PostgreSQL ${version}, ${ROWS.toLocaleString('en')} jobs (10 queues), ${lastHour.toLocaleString('en')} finished in the last hour`);
    console.log(`queueOverview  (all queues, counts by state + oldest age): median ${overviewMs.toFixed(1)} ms of 5`);
    console.log(`jobThroughput  (60 × 1 min buckets, ${perMinute.toLocaleString('en')} jobs counted): median ${throughputMs.toFixed(1)} ms of 5`);
  } finally {
    await sql.end();
  }
} finally {
  await admin.unsafe(`drop database if exists ${dbName}`);
  await admin.end();
}
