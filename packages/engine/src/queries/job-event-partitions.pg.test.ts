import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Sql } from '../db.js';
import { createTestDatabase, type TestDatabase } from '../testing/database.js';
import { holdTransaction } from '../testing/locks.js';
import { attachEventPartition, claimOne, dbEpochSeconds as dbNow, dropEventRangePartitions, eventPartitionOf, insertEventAgo } from '../testing/factories.js';
import { jobGetWithProgress } from './job-admin.js';
import { jobComplete } from './job-complete.js';
import { jobEnqueueMany } from './job-enqueue.js';
import { eventPartitionSeconds, jobEventPartitions, jobEventPartitionsMaintain } from './job-event-partitions.js';
import { jobEventsFetch, jobEventsLatestId, jobEventsList, jobEventsPurge, jobProgress } from './job-events.js';

// Each test gets its own database: the partitions of job_events are the state under test.
let db: TestDatabase;
beforeEach(async () => {
  db = await createTestDatabase({ max: 4 });
});
afterEach(async () => {
  await db.drop();
});

const count = async (sql: Sql, table = 'job_events') => (await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${table}`))[0]!.n;

describe('eventPartitionSeconds', () => {
  it('is an eighth of the retention, between 5 s and a day', () => {
    expect(eventPartitionSeconds(86_400 * 7)).toBe(75_600);
    expect(eventPartitionSeconds(3_600)).toBe(450);
    expect(eventPartitionSeconds(30)).toBe(5);
    expect(eventPartitionSeconds(0)).toBe(5);
    expect(eventPartitionSeconds(86_400 * 30)).toBe(86_400);
  });
});

describe('jobEventPartitionsMaintain', () => {
  it('creates contiguous partitions until one ends two widths ahead, once; new events land in them', async () => {
    await dropEventRangePartitions(db.sql);
    const before = await dbNow(db.sql);
    const first = await jobEventPartitionsMaintain(db.sql, { retentionSeconds: 3_600, widthSeconds: 10 });
    expect(first.created.length).toBeGreaterThanOrEqual(2);
    expect(first.dropped).toEqual([]);
    const parts = await jobEventPartitions(db.sql);
    expect(parts.map((p) => p.name)).toEqual(first.created);
    for (let i = 1; i < parts.length; i++) expect(parts[i]!.from).toBe(parts[i - 1]!.to);
    expect(parts.every((p) => p.to - p.from === 10)).toBe(true);
    // The first starts just after now (rows already in the default partition stay out of it).
    expect(parts[0]!.from).toBeGreaterThan(before);
    expect(parts.at(-1)!.to).toBeGreaterThanOrEqual(before + 20);
    expect(await jobEventPartitionsMaintain(db.sql, { retentionSeconds: 3_600, widthSeconds: 10 })).toEqual({ created: [], dropped: [], skipped: 0 });

    // An event written now predates the first partition and goes to the default one; once the
    // clock is inside a partition's range, events go there.
    await new Promise((r) => setTimeout(r, (parts[0]!.from - before) * 1000 + 50));
    const [{ job }] = (await jobEnqueueMany(db.sql, { items: [{ queue: 'part-new', task: 't' }] })) as [{ job: { id: number } }];
    const [ev] = await jobEventsList(db.sql, { jobId: job.id });
    const where = (await eventPartitionOf(db.sql, [ev!.id])).get(ev!.id);
    expect(parts.map((p) => p.name)).toContain(where);
  });

  it('drops partitions whose every row is past retention, with their rows, and keeps the rest', async () => {
    await dropEventRangePartitions(db.sql);
    const now = Math.floor(await dbNow(db.sql));
    const old = await attachEventPartition(db.sql, now - 7_200, now - 3_600);
    const straddling = await attachEventPartition(db.sql, now - 3_600, now - 500);
    const [{ job }] = (await jobEnqueueMany(db.sql, { items: [{ queue: 'part-drop', task: 't' }] })) as [{ job: { id: number } }];
    const gone = [await insertEventAgo(db.sql, { jobId: job.id, queue: 'part-drop', agoSeconds: 5_000 }), await insertEventAgo(db.sql, { jobId: job.id, queue: 'part-drop', agoSeconds: 4_000 })];
    const kept = await insertEventAgo(db.sql, { jobId: job.id, queue: 'part-drop', agoSeconds: 1_000 });
    const parts = await eventPartitionOf(db.sql, [...gone, kept]);
    expect(gone.map((id) => parts.get(id))).toEqual([old, old]);
    expect(parts.get(kept)).toBe(straddling);

    // Retention 1,000 s: the first partition ended 3,600 s ago, the second 500 s ago (it may hold rows younger than 1,000 s).
    const r = await jobEventPartitionsMaintain(db.sql, { retentionSeconds: 1_000, widthSeconds: 60 });
    expect(r.dropped).toEqual([old]);
    expect(r.skipped).toBe(0);
    const left = (await jobEventsList(db.sql, { jobId: job.id })).map((e) => e.id);
    expect(left).not.toContain(gone[0]);
    expect(left).not.toContain(gone[1]);
    expect(left).toContain(kept);
    // The gap between the kept partition and now is not filled backwards: new partitions start after now.
    const names = (await jobEventPartitions(db.sql)).map((p) => p.name);
    expect(names[0]).toBe(straddling);
    expect(names.slice(1)).toEqual(r.created);
  });

  it('skips a drop whose lock is busy, without waiting for it, and makes it on the next call', async () => {
    await dropEventRangePartitions(db.sql);
    const now = Math.floor(await dbNow(db.sql));
    const old = await attachEventPartition(db.sql, now - 7_200, now - 3_600);
    await jobEventPartitionsMaintain(db.sql, { retentionSeconds: 86_400, widthSeconds: 60 });
    // A reader holding job_events (a long SSE replay, say) conflicts with the drop's ACCESS EXCLUSIVE lock.
    const reader = await holdTransaction(db.connect(1), 'select count(*) from job_events');
    const t0 = Date.now();
    const busy = await jobEventPartitionsMaintain(db.sql, { retentionSeconds: 60, widthSeconds: 60 });
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(busy).toMatchObject({ dropped: [], skipped: 1 });
    expect((await jobEventPartitions(db.sql)).map((p) => p.name)).toContain(old);
    reader.release();
    await reader.done;
    expect((await jobEventPartitionsMaintain(db.sql, { retentionSeconds: 60, widthSeconds: 60 })).dropped).toEqual([old]);
  });

  it('pods maintaining at once never create overlapping or duplicate partitions', async () => {
    await dropEventRangePartitions(db.sql);
    const pools = [db.connect(1), db.connect(1), db.connect(1), db.connect(1)];
    const results = await Promise.all(pools.map((p) => jobEventPartitionsMaintain(p, { retentionSeconds: 600, widthSeconds: 7 })));
    const created = results.flatMap((r) => r.created);
    const parts = await jobEventPartitions(db.sql);
    // Every partition was made by exactly one pod (a lock timeout on the advisory lock is a skip, not an error).
    expect([...created].sort()).toEqual(parts.map((p) => p.name).sort());
    for (let i = 1; i < parts.length; i++) expect(parts[i]!.from).toBe(parts[i - 1]!.to);
    const skipped = results.reduce((n, r) => n + r.skipped, 0);
    if (skipped > 0) expect((await jobEventPartitionsMaintain(db.sql, { retentionSeconds: 600, widthSeconds: 7 })).skipped).toBe(0);
    expect((await jobEventPartitions(db.sql)).at(-1)!.to).toBeGreaterThanOrEqual((await dbNow(db.sql)) + 14);
  });

  it('the default partition keeps rows no range covers; the row purge empties it of expired ones only', async () => {
    await dropEventRangePartitions(db.sql);
    const [{ job }] = (await jobEnqueueMany(db.sql, { items: [{ queue: 'part-default', task: 't' }] })) as [{ job: { id: number } }];
    const oldId = await insertEventAgo(db.sql, { jobId: job.id, queue: 'part-default', agoSeconds: 7_200 });
    expect(await count(db.sql, 'job_events_default')).toBe(2);
    expect(await jobEventsPurge(db.sql, { retentionSeconds: 3_600 })).toEqual({ rows: 1, events: 1 });
    const left = (await jobEventsList(db.sql, { jobId: job.id })).map((e) => e.id);
    expect(left).toHaveLength(1);
    expect(left).not.toContain(oldId);
  });
});

describe('readers across partitions', () => {
  it('replay by job, by queue and for all queues, the latest id, notification fetches and the latest progress read every partition', async () => {
    // Enqueued while only the default partition exists; claimed and finished once a range partition covers now.
    await dropEventRangePartitions(db.sql);
    const res = await jobEnqueueMany(db.sql, { items: [{ queue: 'part-read', task: 't' }, { queue: 'part-read', task: 't' }] });
    const now = Math.floor(await dbNow(db.sql));
    const part = await attachEventPartition(db.sql, now + 1, now + 3_600);
    const wait = (now + 1 - (await dbNow(db.sql))) * 1000 + 50;
    await new Promise((r) => setTimeout(r, wait));
    const c = await claimOne(db.sql, 'part-read');
    await jobProgress(db.sql, { id: c.id, leaseToken: c.leaseToken, data: { pct: 50 } });
    expect((await jobGetWithProgress(db.sql, { id: c.id })).progress).toEqual({ pct: 50 });
    await jobComplete(db.sql, { id: c.id, leaseToken: c.leaseToken, result: 1 });

    const byQueue = await jobEventsList(db.sql, { queue: 'part-read' });
    const where = await eventPartitionOf(db.sql, byQueue.map((e) => e.id));
    expect(new Set(where.values())).toEqual(new Set(['job_events_default', part]));
    expect(byQueue.map((e) => e.id)).toEqual([...byQueue.map((e) => e.id)].sort((a, b) => a - b));
    expect(byQueue.map((e) => e.type)).toEqual(['state', 'state', 'state', 'progress', 'state']);
    const byJob = await jobEventsList(db.sql, { jobId: c.id });
    expect(byJob.map((e) => (e.data as { state?: string }).state ?? e.type)).toEqual(['queued', 'running', 'progress', 'succeeded']);
    expect(res.map((r) => r.job.id)).toContain(c.id);
    const all = await jobEventsList(db.sql, { allQueues: true, afterId: byQueue[0]!.id });
    expect(all.map((e) => e.id)).toEqual(byQueue.slice(1).map((e) => e.id));
    expect(await jobEventsLatestId(db.sql)).toBe(byQueue.at(-1)!.id);
    const fetched = await jobEventsFetch(db.sql, { queue: 'part-read', runs: [[byQueue[0]!.id, byQueue.at(-1)!.id]] });
    expect(fetched).toEqual(byQueue);
  });
});
