import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../testing/database.js';
import { insertJob } from '../testing/factories.js';
import { jobThroughput, queueOverview } from './queue-overview.js';

const db = useTestDatabase();

describe('queue overview', () => {
  it('lists every queue, also those without jobs, with zero counts', async () => {
    await db.sql`insert into queues (name) values ('ov-empty')`;
    await insertJob(db.sql, { queue: 'ov-busy', state: 'running' });
    await db.sql`insert into queues (name) values ('ov-busy') on conflict do nothing`;
    const all = await queueOverview(db.sql);
    expect(all.find((q) => q.name === 'ov-empty')).toEqual({
      name: 'ov-empty', paused: false, concurrencyLimit: null, rateLimit: null, rateIntervalMs: 1000, oldestWaitingSeconds: 0,
      counts: { queued: 0, running: 0, succeeded: 0, retry_waiting: 0, failed: 0, cancelled: 0 },
    });
    expect(all.find((q) => q.name === 'ov-busy')?.counts.running).toBe(1);
  });

  it('ages only runnable waiting jobs: a delayed job is not waiting yet', async () => {
    await db.sql`insert into queues (name) values ('ov-age')`;
    await insertJob(db.sql, { queue: 'ov-age', runAtOffsetMs: 600_000 });
    expect((await queueOverview(db.sql)).find((q) => q.name === 'ov-age')?.oldestWaitingSeconds).toBe(0);
    await insertJob(db.sql, { queue: 'ov-age', state: 'retry_waiting', runAtOffsetMs: -30_000 });
    const age = (await queueOverview(db.sql)).find((q) => q.name === 'ov-age')!.oldestWaitingSeconds;
    expect(age).toBeGreaterThanOrEqual(29);
    expect(age).toBeLessThan(120);
  });
});

describe('job throughput', () => {
  it('puts a job finished just now in the last bucket and ignores cancelled and unfinished jobs', async () => {
    await insertJob(db.sql, { queue: 'tp-now', state: 'succeeded' });
    await insertJob(db.sql, { queue: 'tp-now', state: 'failed' });
    await insertJob(db.sql, { queue: 'tp-now', state: 'cancelled' });
    await insertJob(db.sql, { queue: 'tp-now', state: 'queued' });
    const t = await jobThroughput(db.sql, { windowSeconds: 300, bucketSeconds: 60 });
    expect(t.queues['tp-now']).toEqual({ succeeded: [0, 0, 0, 0, 1], failed: [0, 0, 0, 0, 1] });
    expect(Math.abs(Date.parse(t.until) - Date.now())).toBeLessThan(60_000);
  });

  it.each([
    [{ windowSeconds: 90, bucketSeconds: 60 }],
    [{ windowSeconds: 86_401, bucketSeconds: 60 }],
    [{ windowSeconds: 3600, bucketSeconds: 0 }],
    [{ windowSeconds: 86_400, bucketSeconds: 1 }],
    [{ windowSeconds: 1.5, bucketSeconds: 1 }],
  ])('refuses %j as invalid_request', async (p) => {
    await expect(jobThroughput(db.sql, p)).rejects.toMatchObject({ code: 'invalid_request' });
  });
});
