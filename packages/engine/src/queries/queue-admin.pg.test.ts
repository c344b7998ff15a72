import { describe, expect, it } from 'vitest';
import { DispatchError } from '@pgdispatch/core/errors';
import { useTestDatabase } from '../testing/database.js';
import { insertFinishedJobs, insertJob } from '../testing/factories.js';
import { QUEUE_DEPTHS_SQL, queueDepths, queueGet, queueList, queuePause, queueResume, queueStats, queueUpsert } from './queue-admin.js';

const db = useTestDatabase();

describe('queue admin', () => {
  it('creates a queue with default policy', async () => {
    expect(await queueUpsert(db.sql, { name: 'fresh' })).toEqual({
      name: 'fresh', paused: false, concurrencyLimit: null, defaultMaxAttempts: 5, backoffBaseMs: 1_000, backoffMaxMs: 3_600_000, retentionSeconds: null, deadLetterQueue: null, rateLimit: null, rateIntervalMs: 1000,
    });
  });

  it('updates only the fields given; null clears a limit or retention', async () => {
    await queueUpsert(db.sql, { name: 'policy', concurrencyLimit: 4, defaultMaxAttempts: 9, backoffBaseMs: 50, backoffMaxMs: 500, retentionSeconds: 60 });
    expect(await queueUpsert(db.sql, { name: 'policy', backoffBaseMs: 75 })).toMatchObject({ concurrencyLimit: 4, defaultMaxAttempts: 9, backoffBaseMs: 75, backoffMaxMs: 500, retentionSeconds: 60 });
    expect(await queueUpsert(db.sql, { name: 'policy', concurrencyLimit: null, retentionSeconds: null })).toMatchObject({ concurrencyLimit: null, retentionSeconds: null, defaultMaxAttempts: 9 });
    expect(await queueGet(db.sql, { name: 'policy' })).toMatchObject({ concurrencyLimit: null, backoffBaseMs: 75 });
  });

  it.each([
    ['a zero concurrency limit', { concurrencyLimit: 0 }],
    ['a fractional concurrency limit', { concurrencyLimit: 1.5 }],
    ['0 default attempts', { defaultMaxAttempts: 0 }],
    ['1001 default attempts', { defaultMaxAttempts: 1001 }],
    ['a negative backoff base', { backoffBaseMs: -1 }],
    ['a backoff max beyond int4', { backoffMaxMs: 2 ** 31 }],
    ['a negative retention', { retentionSeconds: -1 }],
  ])('rejects %s as invalid_request without writing', async (_label, patch) => {
    await expect(queueUpsert(db.sql, { name: 'rejected', ...patch })).rejects.toMatchObject({ code: 'invalid_request' });
    expect((await db.sql`select 1 from queues where name = 'rejected'`).length).toBe(0);
  });

  it.each(['../x', 'a b', 'A', 'q'.repeat(65)])('rejects the queue name %j everywhere', async (name) => {
    for (const op of [
      () => queueUpsert(db.sql, { name }),
      () => queuePause(db.sql, { name }),
      () => queueResume(db.sql, { name }),
      () => queueGet(db.sql, { name }),
      () => queueStats(db.sql, { name }),
    ]) {
      const err = await op().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DispatchError);
      expect((err as DispatchError).code).toBe('invalid_request');
    }
  });

  it('pauses and resumes; an unknown queue is not_found', async () => {
    await queueUpsert(db.sql, { name: 'toggle' });
    expect((await queuePause(db.sql, { name: 'toggle' })).paused).toBe(true);
    expect((await queueGet(db.sql, { name: 'toggle' })).paused).toBe(true);
    expect((await queueResume(db.sql, { name: 'toggle' })).paused).toBe(false);
    for (const op of [queuePause, queueResume, queueGet, queueStats]) {
      await expect(op(db.sql, { name: 'missing' })).rejects.toMatchObject({ code: 'not_found' });
    }
  });

  it('lists queues by name', async () => {
    const names = (await queueList(db.sql)).map((q) => q.name);
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(expect.arrayContaining(['fresh', 'policy', 'toggle']));
  });

  it('stats count jobs by state and report the oldest runnable wait', async () => {
    await queueUpsert(db.sql, { name: 'stats' });
    await insertJob(db.sql, { queue: 'stats', runAtOffsetMs: -120_000 });
    await insertJob(db.sql, { queue: 'stats' });
    await insertJob(db.sql, { queue: 'stats', runAtOffsetMs: 3_600_000 });
    await insertJob(db.sql, { queue: 'stats', state: 'retry_waiting', runAtOffsetMs: -30_000 });
    await insertJob(db.sql, { queue: 'stats', state: 'running' });
    await insertJob(db.sql, { queue: 'stats', state: 'succeeded' });
    await insertJob(db.sql, { queue: 'stats', state: 'failed' });
    const s = await queueStats(db.sql, { name: 'stats' });
    expect(s).toMatchObject({ name: 'stats', paused: false, counts: { queued: 3, running: 1, succeeded: 1, retry_waiting: 1, failed: 1, cancelled: 0 } });
    expect(s.oldestWaitingSeconds).toBeGreaterThanOrEqual(120);
    expect(s.oldestWaitingSeconds).toBeLessThan(130);
  });

  it('stats of an empty queue are zeros', async () => {
    await queueUpsert(db.sql, { name: 'empty' });
    expect(await queueStats(db.sql, { name: 'empty' })).toEqual({
      name: 'empty', paused: false, counts: { queued: 0, running: 0, succeeded: 0, retry_waiting: 0, failed: 0, cancelled: 0 }, oldestWaitingSeconds: 0,
    });
  });

  it('depths cover the live states of every queue', async () => {
    await insertJob(db.sql, { queue: 'depth', runAtOffsetMs: -10_000 });
    await insertJob(db.sql, { queue: 'depth', state: 'running' });
    await insertJob(db.sql, { queue: 'depth', state: 'succeeded' });
    const rows = (await queueDepths(db.sql)).filter((r) => r.queue === 'depth').sort((a, b) => a.state.localeCompare(b.state));
    expect(rows).toMatchObject([{ queue: 'depth', state: 'queued', n: 1 }, { queue: 'depth', state: 'running', n: 1 }]);
    expect(rows[0]!.oldestSeconds).toBeGreaterThanOrEqual(10);
  });

  it('depths read the live jobs through their partial indexes, not every finished job', async () => {
    await insertFinishedJobs(db.sql, { queue: 'depth-plan', count: 20_000, agoSeconds: 60 });
    await insertJob(db.sql, { queue: 'depth-plan' });
    await insertJob(db.sql, { queue: 'depth-plan', state: 'running' });
    await db.sql.unsafe('analyze jobs');
    const plan = (await db.sql.unsafe<{ 'QUERY PLAN': string }[]>(`explain ${QUEUE_DEPTHS_SQL}`)).map((r) => r['QUERY PLAN']).join('\n');
    expect(plan).not.toMatch(/Seq Scan/);
    expect(plan).toMatch(/jobs_running_idx/);
  });
});
