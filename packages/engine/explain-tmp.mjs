import { createDb, closeDb } from './dist/db.js';
import { jobClaim } from './dist/queries/job-claim.js';
import { jobCompleteMany } from './dist/queries/job-complete.js';
import { jobEnqueueMany } from './dist/queries/job-enqueue.js';
let capture = false; const notes = [];
const sql = createDb({ url: process.argv[2], max: 1, onNotice: (n) => { if (capture) notes.push(n.message); } });
await sql.unsafe('truncate jobs, job_steps, job_events');
const B = Number(process.argv[3] ?? 250);
if (process.env.GENERIC) await sql.unsafe('set plan_cache_mode = force_generic_plan');
await jobEnqueueMany(sql, { items: Array.from({ length: Number(process.env.JOBS ?? 3000) }, (_, i) => ({ queue: 'q', task: 't', payload: { i } })) });
for (let r = 0; r < 6; r++) {
  const c = await jobClaim(sql, { queues: '*', tasks: ['t'], limit: B, leaseMs: 30000 });
  if (r === 5) { await sql.unsafe("load 'auto_explain'; set auto_explain.log_min_duration = 0; set auto_explain.log_analyze = on; set auto_explain.log_nested_statements = on; set auto_explain.log_level = notice; set client_min_messages = notice"); capture = true; }
  await jobCompleteMany(sql, { items: c.map((x) => ({ id: x.id, leaseToken: x.leaseToken })) });
  capture = false;
}
console.log(notes.join('\n----\n'));
await closeDb(sql);
