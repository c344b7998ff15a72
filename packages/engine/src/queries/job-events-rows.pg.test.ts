import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../testing/database.js';
import { storedEvents } from '../testing/factories.js';
import { jobClaim } from './job-claim.js';
import { jobCompleteMany } from './job-complete.js';
import { jobEnqueue, jobEnqueueMany } from './job-enqueue.js';
import { EVENT_BLOCK, EVENTS_CHANNEL, jobEventsFetch, jobEventsLatestId, jobEventsList, parseEventNotification } from './job-events.js';

// Events of one statement share a row per queue and type (migrations/0010): these tests check the
// storage form and that every reader gives exactly the events the raw rows hold (storedEvents, an
// oracle that expands the rows in JS), including beside one-event rows with consecutive ids as
// written before 0010.

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ max: 4 });
  // Rows as 0009 wrote them: one event each, ids 1…40 one apart, the sequence left at 40.
  await db.sql`insert into job_events (id, job_id, queue, type, data)
               select i, 1000000 + i, case when i % 2 = 0 then 'rows-a' else 'rows-b' end, 'state', '{"state":"queued","attempt":0}'::jsonb
                 from generate_series(1, 40) i`;
  await db.sql`select setval('job_events_ids', 40)`;
});
afterAll(async () => {
  await db.drop();
});

const rowsOf = (queue: string) =>
  db.sql<{ id: number; n: number; single: boolean }[]>`
    select id, coalesce(cardinality(job_ids), 1) as n, job_id is not null as single from job_events where queue = ${queue} order by id`;

describe('job events stored per statement', () => {
  it('a claim and a completion of many jobs write one row per queue; a single one keeps the one-event form', async () => {
    await jobEnqueueMany(db.sql, { items: Array.from({ length: 300 }, (_, i) => ({ queue: i % 3 === 0 ? 'rows-a' : 'rows-b', task: 't' })) });
    const one = await jobEnqueue(db.sql, { queue: 'rows-c', task: 't' });
    const claimed = await jobClaim(db.sql, { queues: ['rows-a', 'rows-b', 'rows-c'], limit: 1000, leaseMs: 30_000 });
    expect(claimed).toHaveLength(301);
    await jobCompleteMany(db.sql, { items: claimed.map((c) => ({ id: c.id, leaseToken: c.leaseToken, result: undefined })) });
    // Enqueue, claim and completion: three rows of 100 for rows-a, three of 200 for rows-b (after the 20 old rows each).
    expect((await rowsOf('rows-a')).filter((r) => !r.single).map((r) => r.n)).toEqual([100, 100, 100]);
    expect((await rowsOf('rows-b')).filter((r) => !r.single).map((r) => r.n)).toEqual([200, 200, 200]);
    expect((await rowsOf('rows-c')).map((r) => [r.n, r.single])).toEqual([[1, true], [1, true], [1, true]]);
    const events = await jobEventsList(db.sql, { jobId: one.job.id });
    expect(events.map((e) => (e.data as { state: string }).state)).toEqual(['queued', 'running', 'succeeded']);
    for (const c of claimed.slice(0, 20)) {
      const mine = await jobEventsList(db.sql, { jobId: c.id });
      expect(mine.map((e) => [(e.data as { state: string }).state, (e.data as { attempt: number }).attempt])).toEqual([['queued', 0], ['running', 1], ['succeeded', 1]]);
      expect(mine.map((e) => e.id)).toEqual((await storedEvents(db.sql, { jobId: c.id })).map((e) => e.id));
      // A job's events after one of its own ids: the rest, also when that id sits inside a row.
      expect((await jobEventsList(db.sql, { jobId: c.id, afterId: mine[0]!.id })).map((e) => e.id)).toEqual(mine.slice(1).map((e) => e.id));
    }
  });

  it('splits a statement into rows of at most EVENT_BLOCK events, each job named once', async () => {
    const n = 2 * EVENT_BLOCK + 452;
    const res = await jobEnqueueMany(db.sql, { items: Array.from({ length: n }, () => ({ queue: 'rows-big', task: 't' })) });
    expect((await rowsOf('rows-big')).map((r) => r.n)).toEqual([EVENT_BLOCK, EVENT_BLOCK, 452]);
    const stored = await storedEvents(db.sql, { queue: 'rows-big' });
    expect(stored.map((e) => e.jobId)).toEqual(res.map((r) => r.job.id)); // job-id order within and across rows
    expect(new Set(stored.map((e) => e.id)).size).toBe(n);
  });

  it('pages a queue and all queues after any id, across old and new rows, with exactly the events that follow', async () => {
    for (const queue of ['rows-a', 'rows-big', undefined]) {
      const oracle = (await storedEvents(db.sql, queue ? { queue } : {})).map((e) => e.id);
      const starts = [0, ...oracle.filter((_, i) => i % 37 === 0 || i < 45)];
      for (const after of starts) {
        const page = await jobEventsList(db.sql, queue ? { queue, afterId: after, limit: 3 } : { allQueues: true, afterId: after, limit: 3 });
        expect(page.map((e) => e.id)).toEqual(oracle.filter((id) => id > after).slice(0, 3));
      }
      // Walking page by page visits every event once.
      const walked: number[] = [];
      for (let after = 0; ;) {
        const page = await jobEventsList(db.sql, queue ? { queue, afterId: after, limit: 500 } : { allQueues: true, afterId: after, limit: 500 });
        if (page.length === 0) break;
        walked.push(...page.map((e) => e.id));
        after = page.at(-1)!.id;
      }
      expect(walked).toEqual(oracle);
    }
    expect(await jobEventsLatestId(db.sql)).toBe(Math.max(...(await storedEvents(db.sql)).map((e) => e.id)));
  });

  it('a notification names runs of event ids that fetch exactly those events, also for a part of a row', async () => {
    const notes: string[] = [];
    const sub = await db.connect(1).listen(EVENTS_CHANNEL, (p) => notes.push(p));
    try {
      const res = await jobEnqueueMany(db.sql, { items: Array.from({ length: 50 }, () => ({ queue: 'rows-note', task: 't' })) });
      for (let i = 0; i < 100 && notes.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      const parsed = notes.map(parseEventNotification);
      expect(parsed).toHaveLength(1);
      const [lo, hi] = parsed[0]!.runs[0]!;
      expect(parsed[0]!.runs).toEqual([[lo, lo + 49]]);
      expect((await jobEventsFetch(db.sql, parsed[0]!)).map((e) => e.jobId)).toEqual(res.map((r) => r.job.id));
      const part = await jobEventsFetch(db.sql, { queue: 'rows-note', runs: [[lo + 5, lo + 9], [hi, hi]] });
      expect(part.map((e) => e.id)).toEqual([lo + 5, lo + 6, lo + 7, lo + 8, lo + 9, hi]);
      expect(part.map((e) => e.jobId)).toEqual([5, 6, 7, 8, 9, 49].map((i) => res[i]!.job.id));
      expect(await jobEventsFetch(db.sql, { queue: 'rows-other', runs: [[lo, hi]] })).toEqual([]);
    } finally {
      await sub.unlisten();
    }
  });
});
