#!/usr/bin/env node
// Claims and completions running concurrently on two connections, the way role all issues them:
// claims of up to PREFETCH outstanding jobs on one, completion batches of up to CB (one in flight)
// on the other. Prints jobs/s, claim wall time early and late in the run and each backend's CPU
// per job (/proc/<pid>/schedstat: needs the server on this machine).
//
//   npm run build && node packages/engine/scripts/conc-probe.mjs postgres://postgres@127.0.0.1:5432 [jobs] [prefetch] [batch]
//
// WARM1=1 claims and completes one job on each connection first (what a live api connection has
// usually done before a batch: the job-event trigger's plan is cached then, migration 0008);
// WATCH=<ms> polls queueDepths on a third connection; LISTEN=1 holds a LISTEN there; PREP_SQL runs
// after the migrations (experiments); VACUUM=1 vacuums the backlog before the run.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createDb, closeDb } from '../dist/db.js';
import { migrate } from '../dist/migrator.js';
import { jobClaim } from '../dist/queries/job-claim.js';
import { jobCompleteMany } from '../dist/queries/job-complete.js';
import { jobEnqueueMany } from '../dist/queries/job-enqueue.js';
import { queueDepths } from '../dist/queries/queue-admin.js';
import { listenForJobs } from '../dist/notify.js';
const serverUrl = process.argv[2];
const JOBS = Number(process.argv[3] ?? 20000), PREFETCH = Number(process.argv[4] ?? 500), CB = Number(process.argv[5] ?? 250);
const dbName = `pgd_conc_${randomBytes(4).toString('hex')}`;
const admin = createDb({ url: serverUrl, max: 1 });
const u = new URL(serverUrl); u.pathname = `/${dbName}`;
await admin.unsafe(`create database ${dbName}`);
const c1 = createDb({ url: u.toString(), max: 1 }), c2 = createDb({ url: u.toString(), max: 1 });
const cpu = (pid) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e3;
try {
  await migrate(c1);
  if (process.env.PREP_SQL) await c1.unsafe(process.env.PREP_SQL);
  for (let i = 0; i < JOBS; i += 1000) await jobEnqueueMany(c1, { items: Array.from({ length: 1000 }, (_, k) => ({ queue: 'q', task: 't', payload: { i: i + k } })) });
  if (process.env.VACUUM) await c1.unsafe('vacuum analyze jobs'); else await c1.unsafe('analyze jobs');
  const [{ pid: p1 }] = await c1`select pg_backend_pid() as pid`; const [{ pid: p2 }] = await c2`select pg_backend_pid() as pid`;
  let done = 0;
  if (process.env.WARM1) { const [j] = await jobClaim(c1, { queues: '*', tasks: ['t'], limit: 1, leaseMs: 30000 }); await jobCompleteMany(c2, { items: [{ id: j.id, leaseToken: j.leaseToken }] }); const [k] = await jobClaim(c2, { queues: '*', tasks: ['t'], limit: 1, leaseMs: 30000 }); await jobCompleteMany(c1, { items: [{ id: k.id, leaseToken: k.leaseToken }] }); done += 2; }
  const cpu0 = [cpu(p1), cpu(p2)];
  let outstanding = 0; const pending = []; let flushing = false; const claims = [];
  const t0 = performance.now();
  let resolveAll; const all = new Promise((r) => (resolveAll = r));
  async function flush() {
    if (flushing || pending.length === 0) return; flushing = true;
    const items = pending.splice(0, CB);
    await jobCompleteMany(c2, { items: items.map((c) => ({ id: c.id, leaseToken: c.leaseToken, result: undefined })) });
    outstanding -= items.length; done += items.length; flushing = false;
    if (done >= JOBS) resolveAll(); else { flush(); kick(); }
  }
  let claiming = false;
  async function kick() {
    if (claiming) return; const want = PREFETCH - outstanding; if (want <= 0) return; claiming = true;
    const s = performance.now();
    const rows = await jobClaim(c1, { queues: '*', tasks: ['t'], limit: want, leaseMs: 30000 });
    claims.push([rows.length, performance.now() - s]); outstanding += rows.length; claiming = false;
    for (const r of rows) pending.push(r);
    setImmediate(flush);
    if (rows.length > 0) kick();
  }
  const c3 = createDb({ url: u.toString(), max: 1 }); let stopW = false; let nW = 0;
  if (process.env.WATCH) (async () => { while (!stopW) { await queueDepths(c3); nW++; await new Promise((r) => setTimeout(r, Number(process.env.WATCH))); } })();
  const lis = process.env.LISTEN ? await listenForJobs(c3, () => {}) : undefined;
  kick();
  await all; stopW = true; await lis?.stop(); console.log('watch calls', nW);
  const sec = (performance.now() - t0) / 1000;
  const n = claims.length, rows = claims.reduce((a, c) => a + c[0], 0);
  const q = (f) => claims.slice(Math.floor(n * f), Math.floor(n * f) + Math.max(1, Math.floor(n / 5)));
  const avg = (xs) => (xs.reduce((a, c) => a + c[1], 0) / xs.length).toFixed(1) + ' ms/' + (xs.reduce((a, c) => a + c[0], 0) / xs.length).toFixed(0);
  console.log(`${(JOBS / sec).toFixed(0)} jobs/s; claims ${n} (${(rows / n).toFixed(0)}/claim); first fifth ${avg(q(0))}, last fifth ${avg(q(0.8))}; backend CPU µs/job claim ${((cpu(p1) - cpu0[0]) / JOBS).toFixed(1)} complete ${((cpu(p2) - cpu0[1]) / JOBS).toFixed(1)}`);
} finally { await closeDb(c1); await closeDb(c2); await admin.unsafe(`drop database if exists ${dbName} with (force)`); await closeDb(admin); }
