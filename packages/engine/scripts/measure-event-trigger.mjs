#!/usr/bin/env node
// Measures what the job-event triggers (migrations/0003_job_events.sql) cost the engine's hot path.
//
//   npm run build && node packages/engine/scripts/measure-event-trigger.mjs postgres://postgres@127.0.0.1:5432 [jobs] [rounds]
//
// Creates a scratch database, migrates it, then runs the engine's own batch operations the way the
// dispatcher and workers do — enqueue a batch of 500, claim 500, heartbeat them, complete them — on
// 4 connections in parallel, for `jobs` jobs (default 40,000) per run. Runs alternate between
// "triggers on" and "triggers off" (`alter table jobs disable trigger …`) for `rounds` rounds
// (default 3), so drift of a shared machine hits both sides alike, and prints jobs/s of each run
// and the medians. The scratch database is dropped at the end.
import { randomBytes } from 'node:crypto';
import { createDb, closeDb } from '../dist/db.js';
import { migrate } from '../dist/migrator.js';
import { jobClaim } from '../dist/queries/job-claim.js';
import { jobCompleteMany } from '../dist/queries/job-complete.js';
import { jobEnqueueMany } from '../dist/queries/job-enqueue.js';
import { jobHeartbeatMany } from '../dist/queries/job-heartbeat.js';

const serverUrl = process.argv[2];
if (!serverUrl) {
  console.error('usage: node packages/engine/scripts/measure-event-trigger.mjs <postgres server url> [jobs] [rounds]');
  process.exit(2);
}
const JOBS = Number(process.argv[3] ?? 40_000);
const ROUNDS = Number(process.argv[4] ?? 3);
const BATCH = 500;
const WORKERS = 4;

const dbName = `pgdispatch_trigger_${randomBytes(4).toString('hex')}`;
const admin = createDb({ url: serverUrl, max: 1 });
const u = new URL(serverUrl);
u.pathname = `/${dbName}`;
await admin.unsafe(`create database ${dbName}`);
const sql = createDb({ url: u.toString(), max: WORKERS + 1 });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function run(triggers) {
  await sql.unsafe(`alter table jobs ${triggers ? 'enable' : 'disable'} trigger jobs_events_insert`);
  await sql.unsafe(`alter table jobs ${triggers ? 'enable' : 'disable'} trigger jobs_events_update`);
  await sql.unsafe('truncate jobs, job_steps, job_events');
  await sql.unsafe('vacuum analyze jobs');
  const started = process.hrtime.bigint();
  let left = JOBS;
  const worker = async (w) => {
    while (left > 0) {
      left -= BATCH;
      const queue = `q${w}`;
      await jobEnqueueMany(sql, { items: Array.from({ length: BATCH }, (_, i) => ({ queue, task: 't', payload: { i } })) });
      const claimed = await jobClaim(sql, { queues: [queue], limit: BATCH, leaseMs: 30_000 });
      const refs = claimed.map((c) => ({ id: c.id, leaseToken: c.leaseToken }));
      await jobHeartbeatMany(sql, { items: refs, leaseMs: 30_000 });
      await jobCompleteMany(sql, { items: refs.map((r) => ({ ...r, result: { ok: true } })) });
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const [{ n }] = await sql`select count(*)::int as n from job_events`;
  return { rate: JOBS / seconds, events: n };
}

try {
  await migrate(sql);
  await run(true); // warm-up
  const on = [];
  const off = [];
  for (let r = 0; r < ROUNDS; r++) {
    const a = await run(true);
    const b = await run(false);
    on.push(a.rate);
    off.push(b.rate);
    console.log(`round ${r + 1}: triggers on ${a.rate.toFixed(0)} jobs/s (${a.events} events), off ${b.rate.toFixed(0)} jobs/s (${b.events} events)`);
  }
  const mOn = median(on);
  const mOff = median(off);
  const [{ v }] = await sql`select current_setting('server_version') as v`;
  console.log(`PostgreSQL ${v}, ${JOBS} jobs per run, ${WORKERS} connections, batches of ${BATCH}: median on ${mOn.toFixed(0)} jobs/s, off ${mOff.toFixed(0)} jobs/s, cost ${((1 - mOn / mOff) * 100).toFixed(1)}%`);
} finally {
  await closeDb(sql);
  await admin.unsafe(`drop database if exists ${dbName} with (force)`);
  await closeDb(admin);
}
