#!/usr/bin/env node
// Server time per job of the hot path's statements: claim and complete in batches, the way the
// dispatcher and the in-process completion Batcher issue them, on one connection.
//
//   npm run build && node packages/engine/scripts/measure-hot-path.mjs postgres://postgres@127.0.0.1:5432 [jobs] [batch] [rounds]
//
// Per round: a fresh backlog of `jobs` jobs (one queue, one task), claimed `batch` at a time with
// the statement role all uses (the task-routed form, since its worker declares its tasks) and
// with the unrouted form, each claimed batch completed by jobCompleteMany. Prints the server
// backend's CPU µs per job of each phase,
// medians over rounds; variants alternate within a round so drift hits both alike.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createDb, closeDb } from '../dist/db.js';
import { migrate } from '../dist/migrator.js';
import { jobClaim } from '../dist/queries/job-claim.js';
import { jobCompleteMany } from '../dist/queries/job-complete.js';
import { jobEnqueueMany } from '../dist/queries/job-enqueue.js';

const serverUrl = process.argv[2];
if (!serverUrl) {
  console.error('usage: node packages/engine/scripts/measure-hot-path.mjs <postgres server url> [jobs] [batch] [rounds]');
  process.exit(2);
}
const JOBS = Number(process.argv[3] ?? 20_000);
const BATCH = Number(process.argv[4] ?? 250);
const ROUNDS = Number(process.argv[5] ?? 3);

const dbName = `pgdispatch_hot_${randomBytes(4).toString('hex')}`;
const admin = createDb({ url: serverUrl, max: 1 });
const u = new URL(serverUrl);
u.pathname = `/${dbName}`;
await admin.unsafe(`create database ${dbName}`);
const sql = createDb({ url: u.toString(), max: 1 });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// CPU time of the connection's server backend (ns, /proc/<pid>/schedstat), not wall time: the
// figure does not move with the machine's load. Needs the server on this machine.
let backendPid = 0;
const now = () => Number(readFileSync(`/proc/${backendPid}/schedstat`, 'utf8').split(' ')[0]) / 1e3;

async function backlog() {
  await sql.unsafe('truncate jobs, job_steps, job_events');
  for (let i = 0; i < JOBS; i += 1000) {
    await jobEnqueueMany(sql, { items: Array.from({ length: Math.min(1000, JOBS - i) }, (_, k) => ({ queue: 'q', task: 't', payload: { i: i + k } })) });
  }
  await sql.unsafe('vacuum analyze jobs');
}

async function run(tasks, triggers = true) {
  await sql.unsafe(`alter table jobs ${triggers ? 'enable' : 'disable'} trigger jobs_events_update`);
  await backlog();
  let claimUs = 0;
  let completeUs = 0;
  for (;;) {
    let t = now();
    const claimed = await jobClaim(sql, { queues: '*', tasks, limit: BATCH, leaseMs: 30_000 });
    claimUs += now() - t;
    if (claimed.length === 0) break;
    t = now();
    await jobCompleteMany(sql, { items: claimed.map((c) => ({ id: c.id, leaseToken: c.leaseToken, result: undefined })) });
    completeUs += now() - t;
  }
  return { claim: claimUs / JOBS, complete: completeUs / JOBS };
}

try {
  await migrate(sql);
  [{ pid: backendPid }] = await sql`select pg_backend_pid() as pid`;
  // Experiments: PREP_SQL runs after the migrations (e.g. "drop index jobs_finished_idx").
  if (process.env.PREP_SQL) await sql.unsafe(process.env.PREP_SQL);
  const variants = { 'claim tasks=[t]': [['t']], 'claim tasks=*': ['*'], 'tasks=[t], no update trigger': [['t'], false] };
  const out = Object.fromEntries(Object.keys(variants).map((k) => [k, { claim: [], complete: [] }]));
  await run('*'); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, tasks] of Object.entries(variants)) {
      const m = await run(...tasks);
      out[name].claim.push(m.claim);
      out[name].complete.push(m.complete);
      console.log(`round ${r + 1} ${name}: claim ${m.claim.toFixed(1)} µs/job, complete ${m.complete.toFixed(1)} µs/job`);
    }
  }
  const [{ v }] = await sql`select current_setting('server_version') as v`;
  console.log(`PostgreSQL ${v}, ${JOBS} jobs, batches of ${BATCH}, median of ${ROUNDS}:`);
  for (const [name, m] of Object.entries(out)) console.log(`  ${name}: claim ${median(m.claim).toFixed(1)} µs/job, complete ${median(m.complete).toFixed(1)} µs/job`);
} finally {
  await closeDb(sql);
  await admin.unsafe(`drop database if exists ${dbName} with (force)`);
  await closeDb(admin);
}
