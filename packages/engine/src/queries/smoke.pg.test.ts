import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../testing/database.js';
import { jobEnqueue } from './job-enqueue.js';
import { jobClaim } from './job-claim.js';
import { jobComplete } from './job-complete.js';
import { jobFail } from './job-fail.js';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db.drop(); });

describe('engine smoke', () => {
  it('enqueues, claims and completes a job once', async () => {
    const { job, created } = await jobEnqueue(db.sql, { queue: 'q1', task: 'noop', payload: { a: 1 } });
    expect(created).toBe(true);
    const claimed = await jobClaim(db.sql, { queues: '*', limit: 10, leaseMs: 30_000 });
    expect(claimed.map((c) => c.id)).toEqual([job.id]);
    expect(claimed[0]?.attempt).toBe(1);
    const out = await jobComplete(db.sql, { id: job.id, leaseToken: claimed[0]!.leaseToken, result: { ok: true } });
    expect(out.ok).toBe(true);
    const again = await jobComplete(db.sql, { id: job.id, leaseToken: claimed[0]!.leaseToken });
    expect(again).toEqual({ id: job.id, ok: false, code: 'lease_lost' });
    const f = await jobFail(db.sql, { id: job.id, leaseToken: claimed[0]!.leaseToken, error: { message: 'x' } });
    expect(f.ok).toBe(false);
  });
});
