import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../testing/database.js';
import { insertJob } from '../testing/factories.js';
import { jobEnqueue } from './job-enqueue.js';
import { jobPurge } from './job-maintenance.js';
import { queueUpsert } from './queue-admin.js';

// jobReapExpiredLeases is covered with the fencing rules in job-lease.pg.test.ts.

const db = useTestDatabase();

/** A job of `state` that finished `agoSeconds` ago, by the database clock. */
async function finished(queue: string, state: 'succeeded' | 'failed' | 'cancelled', agoSeconds: number): Promise<number> {
  const job = await insertJob(db.sql, { queue, state });
  await db.sql`update jobs set finished_at = now() - ${agoSeconds} * interval '1 second' where id = ${job.id}`;
  return job.id;
}
const remaining = async (ids: number[]) =>
  (await db.sql<{ id: number }[]>`select id from jobs where id = any(${ids}::bigint[]) order by id`).map((r) => r.id);

describe('jobPurge', () => {
  it('deletes finished jobs past retention, honouring per-queue retention and the failed retention', async () => {
    await queueUpsert(db.sql, { name: 'short', retentionSeconds: 10 });
    await queueUpsert(db.sql, { name: 'long', retentionSeconds: 10_000 });
    await queueUpsert(db.sql, { name: 'default' });
    const shortOld = await finished('short', 'succeeded', 60);
    const shortNew = await finished('short', 'succeeded', 1);
    const longOld = await finished('long', 'succeeded', 3_600);
    const defaultOld = await finished('default', 'cancelled', 200);
    const defaultNew = await finished('default', 'succeeded', 50);
    const failedOld = await finished('default', 'failed', 1_000);
    const failedNew = await finished('short', 'failed', 60);
    const queued = (await insertJob(db.sql, { queue: 'short' })).id;
    const running = (await insertJob(db.sql, { queue: 'short', state: 'running' })).id;
    const all = [shortOld, shortNew, longOld, defaultOld, defaultNew, failedOld, failedNew, queued, running];

    const n = await jobPurge(db.sql, { retentionSeconds: 100, failedRetentionSeconds: 500 });
    expect(n).toBe(3);
    expect(await remaining(all)).toEqual([shortNew, longOld, defaultNew, failedNew, queued, running].sort((a, b) => a - b));
  });

  it('deletes in batches of batchSize, each job with its steps, and leaves the steps of kept jobs', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push(await finished('batched', 'succeeded', 1_000));
    const kept = await finished('batched', 'succeeded', 10);
    await db.sql`insert into job_steps (job_id, name, result, attempt) select id, s, '1', 1 from jobs, unnest(array['a', 'b']) s where id = any(${[...ids, kept]}::bigint[])`;
    expect(await jobPurge(db.sql, { retentionSeconds: 100, failedRetentionSeconds: 100, batchSize: 2 })).toBe(2);
    expect(await jobPurge(db.sql, { retentionSeconds: 100, failedRetentionSeconds: 100, batchSize: 2 })).toBe(2);
    expect(await jobPurge(db.sql, { retentionSeconds: 100, failedRetentionSeconds: 100, batchSize: 2 })).toBe(1);
    expect(await jobPurge(db.sql, { retentionSeconds: 100, failedRetentionSeconds: 100, batchSize: 2 })).toBe(0);
    expect(await remaining(ids)).toEqual([]);
    const [steps] = await db.sql`select count(*)::int as n from job_steps where job_id = any(${ids}::bigint[])`;
    expect(steps!.n).toBe(0);
    expect((await db.sql`select name from job_steps where job_id = ${kept} order by name`).map((r) => r.name)).toEqual(['a', 'b']);
  });

  it('a batch takes the oldest finished jobs first, whatever order they were written in', async () => {
    // Written newest first, so the table's physical order is the reverse of their age.
    const byAge = new Map<number, number>();
    for (const ago of [100_000, 200_000, 300_000, 400_000, 500_000]) byAge.set(ago, await finished('oldest-first', 'succeeded', ago));
    expect(await jobPurge(db.sql, { retentionSeconds: 50, failedRetentionSeconds: 50, batchSize: 2 })).toBe(2);
    expect(await remaining([...byAge.values()])).toEqual([byAge.get(100_000), byAge.get(200_000), byAge.get(300_000)]);
  });

  it('a retention of 0 purges every finished job', async () => {
    const id = await finished('zero', 'succeeded', 1);
    await jobPurge(db.sql, { retentionSeconds: 0, failedRetentionSeconds: 0 });
    expect(await remaining([id])).toEqual([]);
  });

  it('an idempotency key can be used again once its job is purged', async () => {
    const first = await jobEnqueue(db.sql, { queue: 'reuse', task: 't', idempotencyKey: 'k' });
    await db.sql`update jobs set state = 'succeeded', finished_at = now() - interval '1 hour' where id = ${first.job.id}`;
    expect((await jobEnqueue(db.sql, { queue: 'reuse', task: 't', idempotencyKey: 'k' })).created).toBe(false);
    await jobPurge(db.sql, { retentionSeconds: 60, failedRetentionSeconds: 60 });
    const again = await jobEnqueue(db.sql, { queue: 'reuse', task: 't', idempotencyKey: 'k' });
    expect(again.created).toBe(true);
    expect(again.job.id).not.toBe(first.job.id);
  });
});
