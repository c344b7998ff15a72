// Pickup after an enqueue committed in the same process (role all's Enqueuer), with (`local`) or
// without (`notify`) the local wake, after `npm run build`:
//   node apps/server/scripts/local-pickup.mjs <server url> [local|notify] [jobs=200]
// `jobs` single enqueues 20 ms apart to an idle worker runtime on the in-process transport, on a
// scratch database of <server url>; prints enqueue committed → handler start (ms), when the first
// wake-up came relative to the commit's reply, and claim rounds per job.
const [serverUrl, mode = 'local', N = '200'] = process.argv.slice(2);
if (!serverUrl) throw new Error('usage: local-pickup.mjs <postgres server url> [local|notify] [jobs]');
const pkg = { 'packages/engine/dist/db.js': '@pgdispatch/engine/db', 'packages/engine/dist/migrator.js': '@pgdispatch/engine/migrator',
  'packages/core/dist/log.js': '@pgdispatch/core/log', 'packages/api/dist/dispatcher.js': '@pgdispatch/api/dispatcher',
  'packages/api/dist/control-plane.js': '@pgdispatch/api/control-plane', 'packages/api/dist/enqueue.js': '@pgdispatch/api/enqueue',
  'packages/api/dist/metrics.js': '@pgdispatch/api/metrics', 'packages/api/dist/worker-presence.js': '@pgdispatch/api/worker-presence',
  'packages/worker/dist/runtime.js': '@pgdispatch/worker/runtime', 'packages/worker/dist/builtin-tasks.js': '@pgdispatch/worker/builtin-tasks' };
const imp = (p) => import(pkg[p]);
const { createDb, closeDb } = await imp('packages/engine/dist/db.js');
const { migrate } = await imp('packages/engine/dist/migrator.js');
const { silentLogger } = await imp('packages/core/dist/log.js');
const { Dispatcher } = await imp('packages/api/dist/dispatcher.js');
const { ControlPlane } = await imp('packages/api/dist/control-plane.js');
const { Enqueuer } = await imp('packages/api/dist/enqueue.js');
const { Metrics } = await imp('packages/api/dist/metrics.js');
const { WorkerPresence } = await imp('packages/api/dist/worker-presence.js');
const { WorkerRuntime } = await imp('packages/worker/dist/runtime.js');
const { noopTask } = await imp('packages/worker/dist/builtin-tasks.js');
const admin = createDb({ url: serverUrl, max: 1 });
const name = `pgdispatch_pickup_${process.pid}`;
await admin.unsafe(`create database ${name}`);
const u = new URL(serverUrl);
u.pathname = `/${name}`;
const url = u.toString();
const sql = createDb({ url, max: 10 });
const listen = createDb({ url, max: 1 });
await migrate(sql);
const metrics = new Metrics();
const rounds = [];
const dispatcher = new Dispatcher({ sql, listenSql: listen, leaseMs: 30000, batchMax: 500, pollIntervalMs: 1000, log: silentLogger, onClaimRound: (n) => rounds.push([performance.now(), n]) });
const origWake = dispatcher.wake.bind(dispatcher);
const wakes = [];
dispatcher.wake = (q) => { wakes.push([performance.now(), q]); origWake(q); };
await dispatcher.start();
const enqueuer = new Enqueuer({ sql, metrics, maxPayloadBytes: 1 << 20, ...(mode === 'local' && { onRunnable: (qs) => dispatcher.wakeQueues(qs) }) });
const control = new ControlPlane({ sql, dispatcher, enqueuer, presence: new WorkerPresence(), metrics, leaseMs: 30000, maxPayloadBytes: 1 << 20 });
const started = new Map();
const task = { ...noopTask, handler: (p, ctx) => { started.set(ctx.jobId, performance.now()); return { ok: true }; } };
const runtime = new WorkerRuntime({ transport: control, tasks: [task], concurrency: 16, log: silentLogger });
runtime.start();
await new Promise((r) => setTimeout(r, 600));
const acked = new Map();
for (let i = 0; i < Number(N); i++) {
  const [r] = await enqueuer.enqueue([{ queue: 'pick', task: 'noop' }]);
  acked.set(r.job.id, performance.now());
  await new Promise((res) => setTimeout(res, 20));
}
await new Promise((r) => setTimeout(r, 300));
const lat = [...acked].map(([id, t]) => started.get(id) - t).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(2);
const firstAfter = (arr, t) => arr.find((x) => x[0] >= t);
const wakeLag = [], claimEnd = [];
for (const [id, t] of acked) { const w = wakes.find((x) => x[0] >= t - 5 && x[1] === 'pick'); const r = firstAfter(rounds, t); if (w) wakeLag.push(w[0] - t); if (r) claimEnd.push(r[0] - t); }
const med = (a) => a.sort((x, y) => x - y)[a.length >> 1].toFixed(2);
console.log(`  first wake rel. to ack p50 ${med(wakeLag)}, first claim round end rel. to ack p50 ${med(claimEnd)}, rounds per job ${(rounds.length / Number(N)).toFixed(2)}`);
console.log(`${mode}: enqueue committed → handler start, ms: p50 ${q(0.5)} p95 ${q(0.95)} p99 ${q(0.99)} (${lat.length} jobs)`);
await runtime.stop(); await dispatcher.stop();
await closeDb(sql); await closeDb(listen);
await admin.unsafe(`drop database ${name} with (force)`); await closeDb(admin);
