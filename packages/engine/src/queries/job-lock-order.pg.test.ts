import { describe, expect, it } from 'vitest';
import { isDispatchError } from '@pgdispatch/core/errors';
import { useTestDatabase } from '../testing/database.js';
import { jobClaim } from './job-claim.js';
import { jobCompleteMany } from './job-complete.js';
import { jobEnqueueMany } from './job-enqueue.js';
import { jobFailMany } from './job-fail.js';
import { jobHeartbeatMany } from './job-heartbeat.js';
import { jobReleaseMany } from './job-release.js';

const db = useTestDatabase();
const LEASE = 30_000;

describe('multi-row writes lock rows in id order', () => {
  it('concurrent heartbeat and complete/fail/release batches over the same rows in opposite orders never deadlock (40P01 counted)', async () => {
    // Separate pools: each batch runs on its own connection, so the row locks really interleave.
    const a = db.connect(2);
    const b = db.connect(2);
    const c = db.connect(2);
    let deadlocks = 0;
    let statements = 0;
    const count = async (p: Promise<unknown>) => {
      statements++;
      try {
        await p;
      } catch (err) {
        if (isDispatchError(err) && (err.details as { reason?: string } | undefined)?.reason === '40P01') deadlocks++;
        else throw err;
      }
    };
    const writers = ['complete', 'fail', 'release'] as const;
    for (let round = 0; round < 12; round++) {
      const queue = `lock-order-${round}`;
      await jobEnqueueMany(db.sql, { items: Array.from({ length: 300 }, () => ({ queue, task: 't' })) });
      const jobs = await jobClaim(db.sql, { queues: [queue], limit: 300, leaseMs: LEASE });
      expect(jobs).toHaveLength(300);
      const asc = jobs.map((j) => ({ id: j.id, leaseToken: j.leaseToken })).sort((x, y) => x.id - y.id);
      const desc = [...asc].reverse();
      const writer = writers[round % writers.length];
      const end =
        writer === 'complete' ? jobCompleteMany(b, { items: desc.map((r) => ({ ...r, result: round })) })
        : writer === 'fail' ? jobFailMany(b, { items: desc.map((r) => ({ ...r, error: { message: 'x' } })) })
        : jobReleaseMany(b, { items: desc });
      await Promise.all([
        count(jobHeartbeatMany(a, { items: asc, leaseMs: LEASE })),
        count(end),
        count(jobHeartbeatMany(c, { items: desc, leaseMs: LEASE })),
        count(jobHeartbeatMany(a, { items: asc, leaseMs: LEASE })),
      ]);
    }
    expect(statements).toBe(48);
    expect(deadlocks).toBe(0);
  });
});
