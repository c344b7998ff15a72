import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DispatchError } from '@pgdispatch/core/errors';
import type { JobEvent } from '@pgdispatch/core/events';
import { createTestDatabase, type TestDatabase } from '../testing/database.js';
import { claimOne, dropEventRangePartitions, insertJob, storedEvents } from '../testing/factories.js';
import { jobCancel, jobGetWithProgress, jobRetry } from './job-admin.js';
import { jobClaim } from './job-claim.js';
import { jobComplete } from './job-complete.js';
import { jobEnqueue, jobEnqueueMany } from './job-enqueue.js';
import { EVENTS_CHANNEL, MAX_EVENT_BYTES, jobEventsFetch, jobEventsList, jobEventsPurge, jobProgress, parseEventNotification } from './job-events.js';
import { jobFail } from './job-fail.js';
import { jobHeartbeatMany } from './job-heartbeat.js';
import { jobReapExpiredLeases } from './job-maintenance.js';
import { jobReleaseMany } from './job-release.js';

let db: TestDatabase;
let notes: string[] = [];
let unlisten: () => Promise<void>;
beforeAll(async () => {
  db = await createTestDatabase();
  const sub = await db.connect(1).listen(EVENTS_CHANNEL, (p) => notes.push(p));
  unlisten = () => sub.unlisten();
});
afterAll(async () => {
  await unlisten();
  await db.drop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(pred: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out waiting for a notification');
    await sleep(10);
  }
}
const eventsOf = async (jobId: number) => jobEventsList(db.sql, { jobId });
const summary = (events: JobEvent[]) => events.map((e) => (e.type === 'progress' ? `progress:${JSON.stringify(e.data)}` : `${e.type}:${(e.data as { state: string }).state}:${(e.data as { attempt: number }).attempt}`));
/** Every event id named by the notifications received so far, for `queue`, in arrival order. */
const notifiedIds = (queue: string) =>
  notes.map(parseEventNotification).filter((n) => n?.queue === queue).flatMap((n) => n!.runs.flatMap(([lo, hi]) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i)));

describe('state events from the trigger on jobs', () => {
  it('records every state change of a job through enqueue, claim, fail, retry, complete', async () => {
    const [{ job }] = (await jobEnqueueMany(db.sql, { items: [{ queue: 'ev-life', task: 't', maxAttempts: 2 }] })) as [{ job: { id: number } }];
    const c1 = await claimOne(db.sql, 'ev-life');
    await jobHeartbeatMany(db.sql, { items: [{ id: c1.id, leaseToken: c1.leaseToken }], leaseMs: 30_000 }); // not a state change
    await jobFail(db.sql, { id: c1.id, leaseToken: c1.leaseToken, error: { message: 'boom', stack: 'long stack' }, random: () => 0 });
    const c2 = await claimOne(db.sql, 'ev-life');
    await jobFail(db.sql, { id: c2.id, leaseToken: c2.leaseToken, error: { message: 'again' } });
    await jobRetry(db.sql, { id: job.id });
    const c3 = await claimOne(db.sql, 'ev-life');
    await jobComplete(db.sql, { id: c3.id, leaseToken: c3.leaseToken, result: 1 });
    const events = await eventsOf(job.id);
    expect(summary(events)).toEqual([
      'state:queued:0', 'state:running:1', 'state:retry_waiting:1', 'state:running:2', 'state:failed:2', 'state:queued:0', 'state:running:1', 'state:succeeded:1',
    ]);
    expect(events[2]!.data).toMatchObject({ error: { message: 'boom' }, runAt: expect.any(String) });
    expect(JSON.stringify(events[2]!.data)).not.toContain('long stack');
    expect(events.every((e) => e.queue === 'ev-life' && e.jobId === job.id)).toBe(true);
    expect(events.map((e) => e.id)).toEqual([...events.map((e) => e.id)].sort((a, b) => a - b));
  });

  it('records cancel requests, cancellations, releases and reaped leases', async () => {
    const a = await insertJob(db.sql, { queue: 'ev-misc' });
    const ca = await claimOne(db.sql, 'ev-misc');
    await jobCancel(db.sql, { id: a.id });
    await jobReleaseMany(db.sql, { items: [{ id: ca.id, leaseToken: ca.leaseToken }] });
    expect(summary(await eventsOf(a.id))).toEqual(['state:queued:0', 'state:running:1', 'cancel_requested:running:1', 'state:cancelled:0']);
    const b = await insertJob(db.sql, { queue: 'ev-misc' });
    await claimOne(db.sql, 'ev-misc', 1);
    await sleep(20);
    await jobReapExpiredLeases(db.sql);
    expect(summary(await eventsOf(b.id))).toEqual(['state:queued:0', 'state:running:1', 'state:retry_waiting:1']);
  });

  it('announces a batch with one notification per queue naming exactly its ids', async () => {
    notes = [];
    const items = Array.from({ length: 600 }, (_, i) => ({ queue: i % 3 === 0 ? 'ev-batch-a' : 'ev-batch-b', task: 't' }));
    // A concurrent enqueue on another connection interleaves its ids with ours.
    const other = db.connect(1);
    const [res] = await Promise.all([jobEnqueueMany(db.sql, { items }), jobEnqueueMany(other, { items: items.slice(0, 50) })]);
    await until(() => notifiedIds('ev-batch-a').length + notifiedIds('ev-batch-b').length >= 650);
    await sleep(100);
    for (const queue of ['ev-batch-a', 'ev-batch-b']) {
      const ids = notifiedIds(queue);
      expect(new Set(ids).size).toBe(ids.length); // nobody's id named twice
      const fetched = (await Promise.all(notes.map(parseEventNotification).filter((n) => n?.queue === queue).map((n) => jobEventsFetch(db.sql, n!)))).flat();
      expect(fetched.map((e) => e.id).sort((x, y) => x - y)).toEqual([...ids].sort((x, y) => x - y));
      expect(new Set(fetched.map((e) => e.jobId)).size).toBe(ids.length);
    }
    expect(notes.every((p) => Buffer.byteLength(p) < 8000)).toBe(true);
    expect(res.length).toBe(600);
  });
});

describe('jobProgress', () => {
  it('stores a progress event for the lease holder, after the running event of its attempt, announced on commit', async () => {
    await insertJob(db.sql, { queue: 'progress' });
    const c = await claimOne(db.sql, 'progress');
    const running = (await eventsOf(c.id)).at(-1)!.id;
    await until(() => notifiedIds('progress').includes(running)); // the claim's own announcement
    notes = [];
    await db.sql.begin(async (tx) => {
      await jobProgress(tx, { id: c.id, leaseToken: c.leaseToken, data: { done: 1 } });
      await sleep(100);
      expect(notes).toEqual([]);
    });
    await until(() => notes.length > 0);
    const events = await eventsOf(c.id);
    expect(summary(events)).toEqual(['state:queued:0', 'state:running:1', 'progress:{"done":1}']);
    expect(notes).toEqual([`progress ${events[2]!.id}`]);
    expect((await jobGetWithProgress(db.sql, { id: c.id })).progress).toEqual({ done: 1 });
  });

  it('a stale holder gets lease_lost and records nothing', async () => {
    await insertJob(db.sql, { queue: 'progress-stale' });
    const c = await claimOne(db.sql, 'progress-stale');
    await jobComplete(db.sql, { id: c.id, leaseToken: c.leaseToken });
    const err = await jobProgress(db.sql, { id: c.id, leaseToken: c.leaseToken, data: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DispatchError);
    expect((err as DispatchError).code).toBe('lease_lost');
    expect(summary(await eventsOf(c.id))).toEqual(['state:queued:0', 'state:running:1', 'state:succeeded:1']);
    expect((await jobGetWithProgress(db.sql, { id: c.id })).progress).toBeNull();
  });

  it('events of one job reach a listener in id order while progress races the completion', async () => {
    await insertJob(db.sql, { queue: 'progress-race' });
    const c = await claimOne(db.sql, 'progress-race');
    notes = [];
    const conns = [db.connect(2), db.connect(2), db.connect(2)];
    let stop = false;
    const reporters = conns.map(async (conn, k) => {
      for (let i = 0; !stop; i++) {
        const ok = await jobProgress(conn, { id: c.id, leaseToken: c.leaseToken, data: { k, i } }).then(() => true, () => false);
        if (!ok) return;
      }
    });
    await sleep(150);
    await jobComplete(db.connect(1), { id: c.id, leaseToken: c.leaseToken });
    stop = true;
    await Promise.all(reporters);
    await sleep(200);
    const ids = notifiedIds('progress-race');
    expect(ids.length).toBeGreaterThan(3);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const events = await eventsOf(c.id);
    expect(events.at(-1)!.data).toMatchObject({ state: 'succeeded' }); // no progress after the final state
  });

  it('rejects data over the size budget as payload_too_large, and non-JSON data as invalid_request', async () => {
    await insertJob(db.sql, { queue: 'progress-big' });
    const [c] = await jobClaim(db.sql, { queues: ['progress-big'], limit: 1, leaseMs: 30_000 });
    const ref = { id: c!.id, leaseToken: c!.leaseToken };
    await expect(jobProgress(db.sql, { ...ref, data: 'x'.repeat(MAX_EVENT_BYTES) })).rejects.toMatchObject({ code: 'payload_too_large' });
    await expect(jobProgress(db.sql, { ...ref, data: { n: 10n } })).rejects.toMatchObject({ code: 'invalid_request' });
  });
});

describe('replay and retention', () => {
  it('lists a queue or a job after an id, in pages', async () => {
    const res = await jobEnqueueMany(db.sql, { items: Array.from({ length: 7 }, () => ({ queue: 'ev-replay', task: 't' })) });
    const all = await jobEventsList(db.sql, { queue: 'ev-replay' });
    expect(all.map((e) => e.jobId)).toEqual(res.map((r) => r.job.id));
    const page = await jobEventsList(db.sql, { queue: 'ev-replay', afterId: all[2]!.id, limit: 3 });
    expect(page.map((e) => e.id)).toEqual(all.slice(3, 6).map((e) => e.id));
    expect(await jobEventsList(db.sql, { jobId: res[4]!.job.id, afterId: all[4]!.id })).toEqual([]);
    await expect(jobEventsList(db.sql, { queue: 'ev-replay', afterId: -1 })).rejects.toMatchObject({ code: 'invalid_request' });
  });

  it('purges the default partition\'s events past retention, oldest ids first, and leaves the rest', async () => {
    const purgeDb = await createTestDatabase({ max: 2 });
    try {
      await dropEventRangePartitions(purgeDb.sql);
      expect(await jobEventsPurge(purgeDb.sql, { retentionSeconds: 0, batchSize: 15 })).toEqual({ rows: 0, events: 0 });
      // 30 one-event rows (single enqueues), then one row holding a batch's 40 events.
      for (let i = 0; i < 30; i++) await jobEnqueue(purgeDb.sql, { queue: 'ev-purge', task: 't' });
      await jobEnqueueMany(purgeDb.sql, { items: Array.from({ length: 40 }, () => ({ queue: 'ev-purge', task: 't' })) });
      const ids = (await purgeDb.sql<{ id: number }[]>`select id from job_events order by id`).map((r) => r.id);
      expect(ids).toHaveLength(31);
      await purgeDb.sql`update job_events set created_at = now() - interval '2 hours' where id <= ${ids[19]!} or id = ${ids[30]!}`;
      expect(await jobEventsPurge(purgeDb.sql, { retentionSeconds: 3600, batchSize: 15 })).toEqual({ rows: 15, events: 15 });
      expect(await jobEventsPurge(purgeDb.sql, { retentionSeconds: 3600, batchSize: 15 })).toEqual({ rows: 5, events: 5 });
      // The next 15 lowest ids are 10 kept rows, then the batch row past retention: purged with its 40 events.
      expect(await jobEventsPurge(purgeDb.sql, { retentionSeconds: 3600, batchSize: 15 })).toEqual({ rows: 1, events: 40 });
      expect(await jobEventsPurge(purgeDb.sql, { retentionSeconds: 3600, batchSize: 15 })).toEqual({ rows: 0, events: 0 });
      expect((await storedEvents(purgeDb.sql)).map((e) => e.id)).toEqual(ids.slice(20, 30));
    } finally {
      await purgeDb.drop();
    }
  });

  it('parses notifications and refuses malformed ones', () => {
    expect(parseEventNotification('q.a 1-3,7,9-10')).toEqual({ queue: 'q.a', runs: [[1, 3], [7, 7], [9, 10]] });
    for (const bad of ['', 'q', ' 1', 'q 3-1', 'q 1,,2', 'q x', 'q 1-2-3']) expect(parseEventNotification(bad)).toBeNull();
  });
});
