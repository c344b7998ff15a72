import { describe, expect, it } from 'vitest';
import { closeDb, createDb, type Sql } from '../db.js';
import { useTestDatabase } from '../testing/database.js';
import { jobClaim } from './job-claim.js';
import { jobCompleteMany } from './job-complete.js';
import { jobEnqueueMany } from './job-enqueue.js';
import { jobHeartbeatMany } from './job-heartbeat.js';

const db = useTestDatabase();

/** Runs a claim → heartbeat → complete round on a one-connection pool; returns that connection's prepared statements. */
async function roundOn(pool: Sql, queue: string): Promise<string[]> {
  await jobEnqueueMany(pool, { items: [{ queue, task: 't' }, { queue, task: 't' }] });
  const jobs = await jobClaim(pool, { queues: [queue], limit: 2, leaseMs: 30_000 });
  expect(jobs).toHaveLength(2);
  const refs = jobs.map((j) => ({ id: j.id, leaseToken: j.leaseToken }));
  expect((await jobHeartbeatMany(pool, { items: refs, leaseMs: 30_000 })).every((o) => o.ok)).toBe(true);
  expect((await jobCompleteMany(pool, { items: refs })).every((o) => o.ok)).toBe(true);
  const rows = await pool.unsafe<{ statement: string }[]>('select statement from pg_prepared_statements');
  return rows.map((r) => r.statement);
}

describe('prepared statements', () => {
  it('the fenced writes are prepared on a pool that allows it', async () => {
    const pool = createDb({ url: db.url, max: 1 });
    try {
      const statements = await roundOn(pool, 'prepared-on');
      expect(statements.some((s) => s.includes('lease_expires_at = now() + $3'))).toBe(true); // heartbeat
      expect(statements.some((s) => s.includes("state = 'succeeded'"))).toBe(true); // complete
    } finally {
      await closeDb(pool);
    }
  });

  it('a pool with prepare: false (PgBouncer in transaction mode) prepares nothing', async () => {
    const pool = createDb({ url: db.url, max: 1, prepare: false });
    try {
      expect(await roundOn(pool, 'prepared-off')).toEqual([]);
    } finally {
      await closeDb(pool);
    }
  });
});
