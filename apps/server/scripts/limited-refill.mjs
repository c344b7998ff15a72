// The refill of a concurrency-limited queue in a role-all process, measured (after `npm run build`):
//   node apps/server/scripts/limited-refill.mjs <server url> [jobs=60] [limit=1] [trace]
// Builds what serve.ts builds for role all (dispatcher, control plane, worker runtime with the
// in-process transport) on a scratch database of <server url>, enqueues `jobs` built-in `sleep`
// jobs of 50 ms to a queue limited to `limit`, and prints the handler-start rate after the first
// `limit` starts (the ideal is limit / 0.05 s), the dispatcher's claim rounds and the statements
// sent per job (load-independent), and with `trace` each statement and step relative to the handler
// end before it. The poll interval is 60 s: every refill comes from a wake-up.
const [serverUrl, N = '60', L = '1', mode = 'summary'] = process.argv.slice(2);
if (!serverUrl) throw new Error('usage: limited-refill.mjs <postgres server url> [jobs] [limit] [trace]');
const { createDb, closeDb } = await import('@pgdispatch/engine/db');
const { migrate } = await import('@pgdispatch/engine/migrator');
const { queueUpsert } = await import('@pgdispatch/engine/queries/queue-admin');
const { jobEnqueueMany } = await import('@pgdispatch/engine/queries/job-enqueue');
const { silentLogger } = await import('@pgdispatch/core/log');
const { Dispatcher } = await import('@pgdispatch/api/dispatcher');
const { ControlPlane } = await import('@pgdispatch/api/control-plane');
const { Enqueuer } = await import('@pgdispatch/api/enqueue');
const { Metrics } = await import('@pgdispatch/api/metrics');
const { WorkerPresence } = await import('@pgdispatch/api/worker-presence');
const { WorkerRuntime } = await import('@pgdispatch/worker/runtime');
const { sleepTask } = await import('@pgdispatch/worker/builtin-tasks');

const admin = createDb({ url: serverUrl, max: 1 });
const name = `pgdispatch_refill_${process.pid}`;
await admin.unsafe(`create database ${name}`);
const u = new URL(serverUrl);
u.pathname = `/${name}`;
const url = u.toString();
const events = [];
const mark = (what) => events.push([performance.now(), what]);
const sql = createDb({ url, max: 10, onQuery: (text) => mark(`sql ${text.replace(/\s+/g, ' ').trim().slice(0, 60)}`) });
const plain = createDb({ url, max: 2 });
try {
  await migrate(plain);
  const metrics = new Metrics();
  const dispatcher = new Dispatcher({ sql, listenSql: plain, leaseMs: 30_000, batchMax: 500, pollIntervalMs: 60_000, log: silentLogger, onClaimRound: (n) => mark(`claim round → ${n}`) });
  await dispatcher.start();
  const enqueuer = new Enqueuer({ sql, metrics, maxPayloadBytes: 1 << 20, onRunnable: (qs) => dispatcher.wakeQueues(qs) });
  const control = new ControlPlane({ sql, dispatcher, enqueuer, presence: new WorkerPresence(), metrics, leaseMs: 30_000, maxPayloadBytes: 1 << 20 });
  const traced = { ...sleepTask, handler: async (p, ctx) => { mark('handler start'); const r = await sleepTask.handler(p, ctx); mark('handler end'); return r; } };
  const transport = {
    ...Object.fromEntries(['dequeue', 'heartbeat', 'fail', 'release', 'loadSteps', 'saveStep', 'progress', 'enqueueChild'].map((m) => [m, (...a) => control[m](...a)])),
    complete: async (...a) => { mark('complete()'); const r = await control.complete(...a); mark('complete committed'); return r; },
  };
  const runtime = new WorkerRuntime({ transport, tasks: [traced], concurrency: 16, log: silentLogger });
  runtime.start();
  await queueUpsert(plain, { name: 'limited', concurrencyLimit: Number(L) });
  await new Promise((r) => setTimeout(r, 500)); // the runtime's first (waitMs 0) dequeue and its idle pause
  events.length = 0;
  await jobEnqueueMany(plain, { items: Array.from({ length: Number(N) }, () => ({ queue: 'limited', task: 'sleep', payload: { ms: 50 } })) });
  while (events.filter((e) => e[1] === 'complete committed').length < Number(N)) await new Promise((r) => setTimeout(r, 5));
  if (mode === 'trace') {
    let base = events[0][0];
    for (const [at, what] of events) {
      if (what === 'handler end') base = at;
      console.log((at - base).toFixed(2).padStart(8), what);
    }
  }
  const count = (p) => events.filter((e) => e[1].startsWith(p)).length;
  const starts = events.filter((e) => e[1] === 'handler start').map((e) => e[0]);
  const rate = (starts.length - Number(L)) / ((starts.at(-1) - starts[Number(L) - 1]) / 1000);
  console.log(`${N} jobs of 50 ms, limit ${L}: ${rate.toFixed(1)} handler starts/s after the first ${L} (ideal ${Number(L) / 0.05}); per job: ${(count('claim round') / Number(N)).toFixed(2)} claim rounds, ${(count('sql ') / Number(N)).toFixed(2)} statements, ${(count('sql with candidates') / Number(N)).toFixed(2)} claim-range statements`);
  await runtime.stop();
  await dispatcher.stop();
} finally {
  await closeDb(sql);
  await closeDb(plain);
  await admin.unsafe(`drop database if exists ${name} with (force)`);
  await closeDb(admin);
}
