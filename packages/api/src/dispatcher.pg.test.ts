// The dispatcher against a real database: coalescing counted by statements actually sent to
// PostgreSQL (postgres.js reports every statement to `onQuery`), release of jobs whose requester
// left, and `waitMs: 0`.
import { silentLogger } from '@pgdispatch/core/log';
import type { Sql } from '@pgdispatch/engine/db';
import { jobGet } from '@pgdispatch/engine/queries/job-admin';
import { jobEnqueue } from '@pgdispatch/engine/queries/job-enqueue';
import { useTestDatabase } from '@pgdispatch/engine/testing/database';
import { insertJob } from '@pgdispatch/engine/testing/factories';
import { afterEach, describe, expect, it } from 'vitest';
import { Dispatcher, type DispatcherOptions } from './dispatcher.js';

const db = useTestDatabase();
const dispatchers: Dispatcher[] = [];
afterEach(async () => {
  await Promise.all(dispatchers.splice(0).map((d) => d.stop()));
});

async function startDispatcher(sql: Sql, opts: Partial<DispatcherOptions> = {}): Promise<Dispatcher> {
  // A long poll interval: every claim in these tests is caused by a request, not by the timer.
  const d = new Dispatcher({ sql, listenSql: db.sql, leaseMs: 30_000, batchMax: 500, pollIntervalMs: 600_000, log: silentLogger, ...opts });
  await d.start();
  dispatchers.push(d);
  return d;
}

/** A pool that records the text of every statement it sends. */
function countingPool(): { sql: Sql; claims: () => number } {
  const sent: string[] = [];
  const sql = db.connect(4, { onQuery: (text) => sent.push(text) });
  // Every claim statement locks its rows with SKIP LOCKED; the lookup of paused/limited queues does not.
  return { sql, claims: () => sent.filter((t) => /for update skip locked/i.test(t)).length };
}

async function insertJobs(queue: string, n: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push((await insertJob(db.sql, { queue })).id);
  return ids;
}

describe('Dispatcher', () => {
  it('serves 10 concurrent requests for one queue set with one claim statement', async () => {
    const ids = await insertJobs('coalesce', 20);
    const pool = countingPool();
    const d = await startDispatcher(pool.sql);
    const before = pool.claims();
    const results = await Promise.all(Array.from({ length: 10 }, () => d.request({ queues: ['coalesce'], max: 2, waitMs: 5_000 })));
    expect(results.map((r) => r.length)).toEqual(Array(10).fill(2));
    expect(results.flat().map((j) => j.id).sort((a, b) => a - b)).toEqual(ids);
    expect(pool.claims() - before).toBe(1);
  });

  it('sends one claim per request when requests come one after another (the counter counts)', async () => {
    await insertJobs('sequential', 3);
    const pool = countingPool();
    const d = await startDispatcher(pool.sql);
    const before = pool.claims();
    for (let i = 0; i < 3; i++) expect(await d.request({ queues: ['sequential'], max: 1, waitMs: 5_000 })).toHaveLength(1);
    expect(pool.claims() - before).toBe(3);
  });

  it('releases a job claimed for a requester that left before delivery, without spending an attempt', async () => {
    const [id] = await insertJobs('orphan', 1);
    const ac = new AbortController();
    let released = 0;
    // The requester hangs up after the claim statement returned and before its jobs are dealt.
    const d = await startDispatcher(db.sql, { onClaimRound: () => ac.abort(), onRelease: (n) => (released += n) });
    expect(await d.request({ queues: ['orphan'], max: 1, waitMs: 5_000, signal: ac.signal })).toEqual([]);
    await expect.poll(() => released).toBe(1);
    expect(await jobGet(db.sql, { id: id! })).toMatchObject({ state: 'queued', attempt: 0 });
    expect(await d.request({ queues: ['orphan'], max: 1, waitMs: 5_000 })).toMatchObject([{ id, attempt: 1 }]);
  });

  it('waitMs 0 claims what is claimable now and answers at once; nothing is claimed and released', async () => {
    const [id] = await insertJobs('now', 1);
    let released = 0;
    const d = await startDispatcher(db.sql, { onRelease: (n) => (released += n) });
    expect(await d.request({ queues: ['now'], max: 5, waitMs: 0 })).toMatchObject([{ id, attempt: 1 }]);
    expect(await jobGet(db.sql, { id: id! })).toMatchObject({ state: 'running', attempt: 1 });
    const t0 = Date.now();
    expect(await d.request({ queues: ['now'], max: 5, waitMs: 0 })).toEqual([]);
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(released).toBe(0);
  });

  it('a request waits for a job enqueued later and is woken by NOTIFY, not the poll timer', async () => {
    const d = await startDispatcher(db.sql);
    const pending = d.request({ queues: ['later'], max: 1, waitMs: 10_000 });
    await new Promise((r) => setTimeout(r, 100));
    const { job } = await jobEnqueue(db.sql, { queue: 'later', task: 'noop' });
    expect(await pending).toMatchObject([{ id: job.id }]);
  });
});
