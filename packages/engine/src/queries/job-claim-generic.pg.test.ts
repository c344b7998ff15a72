import { describe, expect, it } from 'vitest';
import { closeDb, createDb, type Sql } from '../db.js';
import { useTestDatabase } from '../testing/database.js';
import { insertJob } from '../testing/factories.js';
import { jobClaim } from './job-claim.js';
import { queuePause, queueUpsert } from './queue-admin.js';

const db = useTestDatabase();
const LEASE = 30_000;

/** A pool like the server's claim pool (database.ts), one connection, recording what it sends. */
async function withGenericPool(fn: (pool: Sql, sent: string[]) => Promise<void>): Promise<void> {
  const sent: string[] = [];
  const pool = createDb({ url: db.url, max: 1, genericPlans: true, onQuery: (t) => sent.push(t) });
  try {
    await fn(pool, sent);
  } finally {
    await closeDb(pool);
  }
}

describe('gated claims on a generic-plan pool (ClaimParams.generic)', () => {
  it('are single statements with generic plans, in claim order, committing asynchronously by themselves', async () => {
    const q = 'generic-order';
    const ids: number[] = [];
    for (const p of [4, 0, 3, 1, 2, 5, 0]) ids.push((await insertJob(db.sql, { queue: q, task: 'g.t', priority: p })).id);
    const other = await insertJob(db.sql, { queue: q, task: 'g.other', priority: -1 });
    const expected = await db.sql<{ id: number }[]>`
      select id from jobs where queue = ${q} and task = 'g.t' order by priority, run_at, id`;
    await withGenericPool(async (pool, sent) => {
      const got: number[] = [];
      // Rounds of 2, 2, 2 and 1, then an empty fifth.
      for (let round = 0; round < 5; round++) {
        const jobs = await jobClaim(db.sql, { queues: '*', tasks: ['g.t'], limit: 2, leaseMs: LEASE, generic: pool });
        got.push(...jobs.map((j) => j.id));
      }
      expect(got).toEqual(expected.map((r) => r.id));
      expect(got).not.toContain(other.id);
      // Nothing but the claims went to the pool (and postgres.js's one look-up of the array types on
      // a new connection): no BEGIN, SET LOCAL or COMMIT, and the gate counted only after the claim
      // that came back empty (a claim that took jobs went through an open gate).
      const statements = sent.filter((t) => !t.includes('pg_catalog.pg_type'));
      expect(statements.map((t) => (t.includes('for update skip locked') ? 'claim' : /count\(\*\)::int as n from queues/.test(t) ? 'gate' : t)))
        .toEqual(['claim', 'claim', 'claim', 'claim', 'claim', 'gate']);
      const [mode] = await pool<{ v: string }[]>`select current_setting('plan_cache_mode') as v`;
      expect(mode!.v).toBe('force_generic_plan');
      const plans = await pool<{ generic: number; custom: number }[]>`
        select generic_plans::int as generic, custom_plans::int as custom from pg_prepared_statements
         where statement like '%for update skip locked%' and statement not like '%pg_prepared_statements%'`;
      expect(plans).toEqual([{ generic: 5, custom: 0 }]);
      const [sync] = await pool<{ v: string }[]>`select current_setting('synchronous_commit') as v`;
      expect(sync!.v).toBe('on');
    });
    const [main] = await db.sql<{ v: string }[]>`select current_setting('plan_cache_mode') as v`;
    expect(main!.v).toBe('auto');
    const states = await db.sql<{ state: string; n: number }[]>`
      select state, count(*)::int as n from jobs where queue = ${q} group by state order by state`;
    expect(states).toEqual([{ state: 'queued', n: 1 }, { state: 'running', n: 7 }]);
  });

  it('take nothing past a paused or limited queue; the ordinary path then claims what the limits allow', async () => {
    await queueUpsert(db.sql, { name: 'generic-paused' });
    await queuePause(db.sql, { name: 'generic-paused' });
    await queueUpsert(db.sql, { name: 'generic-limited', concurrencyLimit: 1 });
    await insertJob(db.sql, { queue: 'generic-paused', task: 'g.gate', priority: -9 });
    for (let i = 0; i < 3; i++) await insertJob(db.sql, { queue: 'generic-limited', task: 'g.gate', priority: i });
    const free = [await insertJob(db.sql, { queue: 'generic-free', task: 'g.gate' }), await insertJob(db.sql, { queue: 'generic-free', task: 'g.gate' })];
    await withGenericPool(async (pool, sent) => {
      const jobs = await jobClaim(db.sql, { queues: '*', tasks: ['g.gate'], limit: 10, leaseMs: LEASE, generic: pool });
      expect(jobs.map((j) => j.queue).sort()).toEqual(['generic-free', 'generic-free', 'generic-limited']);
      expect(jobs.map((j) => j.id)).toEqual(expect.arrayContaining(free.map((f) => f.id)));
      // The gated statement ran on the pool and found its gate closed (it took nothing, so the gate
      // was counted there); the rest went the ordinary way.
      expect(sent.filter((t) => t.includes('for update skip locked'))).toHaveLength(1);
      expect(sent.filter((t) => /count\(\*\)::int as n from queues/.test(t))).toHaveLength(1);
    });
    const [paused] = await db.sql<{ state: string }[]>`select state from jobs where queue = 'generic-paused'`;
    expect(paused!.state).toBe('queued');
  });
});
