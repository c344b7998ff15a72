import { createDb, closeDb } from './dist/db.js';
import { jobClaim } from './dist/queries/job-claim.js';
import { jobCompleteMany } from './dist/queries/job-complete.js';
import { jobEnqueueMany } from './dist/queries/job-enqueue.js';
import { jobHeartbeatMany } from './dist/queries/job-heartbeat.js';
import { readFileSync } from 'node:fs';
const sql = createDb({ url: process.argv[2], max: 1 });
const [{ pid }] = await sql`select pg_backend_pid() as pid`;
if (process.env.GENERIC) await sql.unsafe('set plan_cache_mode = force_generic_plan');
const cpu = () => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e3;
await sql.unsafe('truncate jobs, job_steps, job_events');
const B = Number(process.argv[3] ?? 1);
await jobEnqueueMany(sql, { items: Array.from({ length: 3000 }, (_, i) => ({ queue: 'q', task: 't', payload: { i } })) });
let cc = 0, n = 0;
for (let r = 0; r < 3000 / B; r++) {
  const c = await jobClaim(sql, { queues: '*', tasks: ['t'], limit: B, leaseMs: 30000 });
  if (!c.length) break;
  const t = cpu();
  await jobCompleteMany(sql, { items: c.map((x) => ({ id: x.id, leaseToken: x.leaseToken })) });
  cc += cpu() - t; n += c.length;
}
console.log('complete server us/job', (cc / n).toFixed(1));
if (process.env.SHOW) console.log(await sql`select left(regexp_replace(statement, '\\s+', ' ', 'g'), 60) as s, generic_plans, custom_plans from pg_prepared_statements order by custom_plans desc`);
await closeDb(sql);
