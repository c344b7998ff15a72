import { describe, expect, it } from 'vitest';
import type { ClaimedJob } from '@pgdispatch/core/types';
import type { Sql } from '../db.js';
import { useTestDatabase } from '../testing/database.js';
import { withPlans as withAutoExplain } from '../testing/plans.js';
import { jobClaim } from './job-claim.js';
import { jobCompleteMany } from './job-complete.js';
import { jobEnqueueMany } from './job-enqueue.js';
import { jobFailMany } from './job-fail.js';
import { jobHeartbeatMany } from './job-heartbeat.js';
import { jobReleaseMany } from './job-release.js';

const db = useTestDatabase();

/** Top-level statements' plans (analyzed) on a one-connection pool with plan cache `mode`. */
const withPlans = (mode: string, fn: (pool: Sql, plans: string[]) => Promise<void>) =>
  withAutoExplain(db.url, `set auto_explain.log_analyze = on; set plan_cache_mode = ${mode}`, fn);

const writes: { name: string; marker: string; run: (pool: Sql, jobs: ClaimedJob[]) => Promise<{ ok: boolean }[]> }[] = [
  { name: 'heartbeat', marker: 'lease_expires_at = now() +', run: (pool, jobs) => jobHeartbeatMany(pool, { items: jobs, leaseMs: 30_000 }) },
  { name: 'complete', marker: "state = 'succeeded'", run: (pool, jobs) => jobCompleteMany(pool, { items: jobs.map((j) => ({ id: j.id, leaseToken: j.leaseToken, result: { id: j.id } })) }) },
  { name: 'release', marker: 'greatest(j.attempt - 1, 0)', run: (pool, jobs) => jobReleaseMany(pool, { items: jobs }) },
  { name: 'fail', marker: 'with x as', run: (pool, jobs) => jobFailMany(pool, { items: jobs.map((j) => ({ id: j.id, leaseToken: j.leaseToken, error: { message: 'x' }, retryable: false })) }) },
];

/**
 * Every fenced batch write finds its rows by primary key, whatever the plan mode. With
 * `state = 'running'` in its lookup the planner took jobs_running_idx whenever the statistics
 * said few jobs run (they were analysed while the backlog was queued): a bitmap scan of every
 * running job, and of every dead entry a completed job left there, joined to the batch, per
 * statement (`measure-hot-path.mjs`, batches of 16: 93–118 → 62–81 µs of server CPU per completed job).
 * The state is implied by the token match (CHECK: running exactly when a lease token is set).
 */
describe('fenced write plans', () => {
  for (const mode of ['force_custom_plan', 'force_generic_plan']) {
    it(`read the batch's rows through jobs_pkey, not jobs_running_idx (${mode})`, async () => {
      const queue = `fenced-plan-${mode}`;
      await jobEnqueueMany(db.sql, { items: Array.from({ length: 1_200 }, () => ({ queue, task: 't' })) });
      await db.sql.unsafe('analyze jobs');
      const running = await jobClaim(db.sql, { queues: [queue], limit: 1_200, leaseMs: 30_000 });
      expect(running).toHaveLength(1_200);
      await withPlans(mode, async (pool, plans) => {
        for (const [i, w] of writes.entries()) {
          // Five held jobs and a stale lease of a sixth beside them.
          const batch = running.slice(i * 6, i * 6 + 5);
          const stale = { ...running[i * 6 + 5]!, leaseToken: '00000000-0000-4000-8000-000000000000' };
          plans.length = 0;
          const out = await w.run(pool, [...batch, stale]);
          expect(out.map((o) => o.ok), w.name).toEqual([true, true, true, true, true, false]);
          const mine = plans.filter((p) => p.includes(w.marker));
          expect(mine.length, w.name).toBeGreaterThan(0);
          for (const plan of mine) {
            expect(plan, w.name).toContain('jobs_pkey');
            expect(plan, w.name).not.toContain('jobs_running_idx');
            expect(plan, w.name).not.toMatch(/Seq Scan on jobs/);
          }
        }
      });
      const states = await db.sql<{ state: string; n: number }[]>`
        select state, count(*)::int as n from jobs where queue = ${queue} group by state order by state`;
      expect(states).toEqual([{ state: 'failed', n: 5 }, { state: 'queued', n: 5 }, { state: 'running', n: 1_185 }, { state: 'succeeded', n: 5 }]);
    });
  }
});
