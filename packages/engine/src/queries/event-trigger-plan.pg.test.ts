import { describe, expect, it } from 'vitest';
import { closeDb, createDb } from '../db.js';
import { useTestDatabase } from '../testing/database.js';
import { jobClaim } from './job-claim.js';
import { jobCompleteMany } from './job-complete.js';
import { jobEnqueueMany } from './job-enqueue.js';

const db = useTestDatabase();

/**
 * The update trigger caches its plan on a connection's first update (migration 0008). Plans come
 * back as notices from auto_explain (shipped with PostgreSQL, loaded for this session only).
 */
describe('job event trigger plan', () => {
  it('a batch after a one-row first update does not join the transition tables in a nested loop', async () => {
    const plans: string[] = [];
    const pool = createDb({ url: db.url, max: 1, onNotice: (n) => plans.push(n.message) });
    try {
      await pool.unsafe(`load 'auto_explain'`);
      await pool.unsafe(`set auto_explain.log_min_duration = 0; set auto_explain.log_nested_statements = on; set auto_explain.log_level = 'notice'`);
      await jobEnqueueMany(pool, { items: Array.from({ length: 201 }, () => ({ queue: 'plan', task: 't' })) });
      // First update on this connection: one row. This is where the trigger's plan is cached.
      const [one] = await jobClaim(pool, { queues: ['plan'], limit: 1, leaseMs: 30_000 });
      const many = await jobClaim(pool, { queues: ['plan'], limit: 200, leaseMs: 30_000 });
      expect(many).toHaveLength(200);
      plans.length = 0;
      const out = await jobCompleteMany(pool, { items: [one!, ...many].map((j) => ({ id: j.id, leaseToken: j.leaseToken })) });
      expect(out.every((o) => o.ok)).toBe(true);
      const trigger = plans.filter((p) => p.includes('insert into job_events') && p.includes('old_jobs'));
      expect(trigger.length).toBeGreaterThan(0);
      for (const p of trigger) {
        expect(p).toMatch(/Merge Join|Hash Join/);
        expect(p).not.toContain('Nested Loop');
      }
    } finally {
      await closeDb(pool);
    }
  });
});
