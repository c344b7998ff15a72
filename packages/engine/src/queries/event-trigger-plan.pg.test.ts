import { describe, expect, it } from 'vitest';
import type { Sql } from '../db.js';
import { useTestDatabase } from '../testing/database.js';
import { withPlans as withAutoExplain } from '../testing/plans.js';
import { jobClaim } from './job-claim.js';
import { jobCompleteMany } from './job-complete.js';
import { jobEnqueueMany } from './job-enqueue.js';

const db = useTestDatabase();

const withPlans = (settings: string, fn: (pool: Sql, plans: string[]) => Promise<void>) => withAutoExplain(db.url, settings, fn);

/** The update trigger caches its plan on a connection's first update (migration 0008). */
describe('job event trigger plan', () => {
  it('a batch after a one-row first update does not join the transition tables in a nested loop', async () => {
    await withPlans('set auto_explain.log_nested_statements = on; set auto_explain.log_analyze = on', async (pool, plans) => {
      // Enqueued on another connection, so this one's first event write comes from the update trigger.
      await jobEnqueueMany(db.sql, { items: Array.from({ length: 201 }, () => ({ queue: 'plan', task: 't' })) });
      // First update on this connection: one row. This is where the trigger's plan is cached.
      const [one] = await jobClaim(pool, { queues: ['plan'], limit: 1, leaseMs: 30_000 });
      const many = await jobClaim(pool, { queues: ['plan'], limit: 200, leaseMs: 30_000 });
      expect(many).toHaveLength(200);
      plans.length = 0;
      const out = await jobCompleteMany(pool, { items: [one!, ...many].map((j) => ({ id: j.id, leaseToken: j.leaseToken })) });
      expect(out.every((o) => o.ok)).toBe(true);
      const trigger = plans.filter((p) => p.includes('pgdispatch_record_events') && p.includes('old_jobs'));
      expect(trigger.length).toBeGreaterThan(0);
      for (const p of trigger) {
        expect(p).toMatch(/Merge Join|Hash Join/);
        expect(p).not.toContain('Nested Loop');
      }
      // The statement that writes the rows (migrations/0010): planned without disabled nodes, so never
      // past jit_above_cost (with nested loops off its one join cost 10^10 and each call compiled JIT, 210 ms).
      const writes = plans.filter((p) => p.includes('insert into job_events'));
      expect(writes.length).toBeGreaterThan(0);
      for (const p of writes) expect(p).not.toMatch(/JIT:|10000000000/);
    });
  });

  it('the large-statement branch is first planned at 32 rows and keeps a hash or merge join for 500 (migration 0012)', async () => {
    await withPlans('set auto_explain.log_nested_statements = on; set auto_explain.log_analyze = on', async (pool, plans) => {
      await jobEnqueueMany(db.sql, { items: Array.from({ length: 1 + 31 + 32 + 500 }, () => ({ queue: 'plan-branches', task: 't' })) });
      // Each size once, smallest first: one row, the most the small branch takes, the least the large one takes.
      const held: unknown[] = [];
      for (const n of [1, 31, 32]) held.push(...(await jobClaim(pool, { queues: ['plan-branches'], limit: n, leaseMs: 30_000 })));
      expect(held).toHaveLength(64);
      plans.length = 0;
      const many = await jobClaim(pool, { queues: ['plan-branches'], limit: 500, leaseMs: 30_000 });
      expect(many).toHaveLength(500);
      const trigger = plans.filter((p) => p.includes('pgdispatch_record_events') && p.includes('old_jobs'));
      expect(trigger).toHaveLength(1);
      expect(trigger[0]).toMatch(/Merge Join|Hash Join/);
      expect(trigger[0]).not.toContain('Nested Loop');
      expect(trigger[0]).toContain('rows=500');
      // One event row holds the 500 claims (the general path), and the single claim's row the one-event form.
      const rows = await db.sql<{ n: number; single: boolean }[]>`
        select coalesce(cardinality(job_ids), 1)::int as n, job_id is not null as single from job_events
         where queue = 'plan-branches' and type = 'state' and coalesce(data, datas[1]) ->> 'state' = 'running' order by id`;
      expect(rows.map((r) => r.n)).toEqual([1, 31, 32, 500]);
      expect(rows[0]!.single).toBe(true);
    });
  });

  it('neither trigger function saves and restores settings per call (migration 0012)', async () => {
    const fns = await db.sql<{ name: string; config: string[] | null }[]>`
      select proname as name, proconfig as config from pg_proc
       where proname in ('pgdispatch_jobs_updated', 'pgdispatch_jobs_inserted', 'pgdispatch_record_events', 'pgdispatch_record_event_groups') order by proname`;
    expect(fns.map((f) => f.name)).toEqual(['pgdispatch_jobs_inserted', 'pgdispatch_jobs_updated', 'pgdispatch_record_event_groups', 'pgdispatch_record_events']);
    for (const f of fns) expect(f.config).toBeNull();
  });
});

describe('completion plan', () => {
  it('a completion of 300 unnests its arrays once, not once per locked row, and stores each item its own result', async () => {
    // The plan PostgreSQL 15 chose on a 1.5M-row jobs table, forced here on a small one: the
      // generic plan of the prepared statement (it estimates an unnest at 10 rows and the
      // materialized CTE at 1) with nested loops only. Before the fix that plan re-ran the unnest
      // of the results per locked row and compared n² pairs.
    const settings = 'set plan_cache_mode = force_generic_plan; set enable_hashjoin = off; set enable_mergejoin = off; set auto_explain.log_analyze = on';
    await withPlans(settings, async (pool, plans) => {
      await jobEnqueueMany(pool, { items: Array.from({ length: 2_100 }, () => ({ queue: 'complete-plan', task: 't' })) });
      for (let round = 0; round < 7; round++) {
        const jobs = await jobClaim(pool, { queues: ['complete-plan'], limit: 300, leaseMs: 30_000 });
        expect(jobs).toHaveLength(300);
        plans.length = 0;
        const out = await jobCompleteMany(pool, { items: jobs.map((j) => ({ id: j.id, leaseToken: j.leaseToken, result: { of: j.id } })) });
        expect(out.every((o) => o.ok)).toBe(true);
      }
      const [complete] = plans.filter((p) => p.includes('with x as') && p.includes("state = 'succeeded'"));
      expect(complete).toBeDefined();
      const rescans = [...(complete as string).matchAll(/Function Scan[^\n]*loops=(\d+)/g)].map((m) => Number(m[1]));
      expect(rescans.length).toBeGreaterThan(0);
      expect(Math.max(...rescans)).toBe(1);
      // The write itself (CTE done, up to CTE woken) joins its locked rows to nothing but jobs.
      const write = (complete as string).slice((complete as string).indexOf('CTE done'), (complete as string).indexOf('CTE woken'));
      expect(write).toContain('Update on jobs');
      expect(write).not.toContain('Function Scan');
      expect(write).not.toContain('Rows Removed by Join Filter');
      const wrong = await db.sql`select id from jobs where queue = 'complete-plan' and state = 'succeeded' and result <> jsonb_build_object('of', id)`;
      expect(wrong).toHaveLength(0);
      expect((await db.sql`select id from jobs where queue = 'complete-plan' and state = 'succeeded'`).length).toBe(2_100);
    });
  });
});
