import type { JobEvent } from '@pgdispatch/core/events';
import { silentLogger } from '@pgdispatch/core/log';
import { closeDb, type Sql } from '@pgdispatch/engine/db';
import { jobEventsLatestId } from '@pgdispatch/engine/queries/job-events';
import { useTestDatabase } from '@pgdispatch/engine/testing/database';
import { insertJob, terminateListeners } from '@pgdispatch/engine/testing/factories';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_QUEUES, JobEvents } from './job-events.js';

const db = useTestDatabase();
let listenSql: Sql;
let hub: JobEvents;

beforeAll(async () => {
  listenSql = db.connect(1);
  hub = new JobEvents({ sql: db.sql, listenSql, log: silentLogger });
  await hub.start();
});
afterAll(async () => {
  await hub?.stop();
  await closeDb(listenSql);
});

const until = async (what: () => boolean, ms = 10_000) => {
  for (const end = Date.now() + ms; !what(); ) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('JobEvents: the all-queue subscription', () => {
  it('gets every queue’s events, and after a lost LISTEN resyncs from where it started, not from the start of the table', async () => {
    for (let i = 0; i < 3; i++) await insertJob(db.sql, { queue: `old-${i}` });
    // Wait for the notification of the last old event to reach the hub (notifications come in
    // commit order), so none of the old ones can arrive as a late live event below.
    const seen: JobEvent[] = [];
    const off = await hub.subscribe({ queue: 'old-2' }, (e) => seen.push(e));
    const last = await insertJob(db.sql, { queue: 'old-2' });
    await until(() => seen.some((e) => e.jobId === last.id));
    off();
    const start = await jobEventsLatestId(db.sql);
    const got: JobEvent[] = [];
    const unsubscribe = await hub.subscribe({ queue: ALL_QUEUES }, (e) => got.push(e), start);
    try {
      // The LISTEN connection dies before this subscriber got anything; an event committed before
      // it is back is never notified, so only the resync can deliver it.
      expect(await terminateListeners(db.sql)).toBe(1);
      const a = await insertJob(db.sql, { queue: 'all-a' });
      await until(() => got.some((e) => e.jobId === a.id));
      const b = await insertJob(db.sql, { queue: 'all-b' });
      await until(() => got.some((e) => e.jobId === b.id));
      expect(got.map((e) => e.jobId)).toEqual([a.id, b.id]);
      expect(got.every((e) => e.id > start)).toBe(true); // nothing of the older queues' events
    } finally {
      unsubscribe();
    }
    expect(hub.subscribers).toBe(0);
  });
});

describe('JobEvents: LISTEN only while a stream is open', () => {
  it('LISTENs at the first stream, UNLISTENs once the last closed, and LISTENs again for the next', async () => {
    const sent: string[] = [];
    const own = db.connect(1, { onQuery: (text) => sent.push(text.trim().toLowerCase()) });
    const lazy = new JobEvents({ sql: db.sql, listenSql: own, log: silentLogger, idleUnlistenMs: 50 });
    const listens = () => sent.filter((t) => t.startsWith('listen')).length;
    const unlistens = () => sent.filter((t) => t.startsWith('unlisten')).length;
    try {
      expect(lazy.isListening).toBe(false);
      await insertJob(db.sql, { queue: 'lazy-q' });
      expect(listens()).toBe(0);
      const seen: JobEvent[] = [];
      let off = await lazy.subscribe({ queue: 'lazy-q' }, (e) => seen.push(e));
      expect(lazy.isListening).toBe(true);
      expect(listens()).toBe(1);
      const b = await insertJob(db.sql, { queue: 'lazy-q' });
      await until(() => seen.some((e) => e.jobId === b.id));
      off();
      await until(() => !lazy.isListening && unlistens() === 1);
      // The next stream LISTENs again before it returns, so an event committed after it is delivered.
      off = await lazy.subscribe({ queue: 'lazy-q' }, (e) => seen.push(e));
      expect(listens()).toBe(2);
      const c = await insertJob(db.sql, { queue: 'lazy-q' });
      await until(() => seen.some((e) => e.jobId === c.id));
      // A stream opened within the idle period keeps the LISTEN: no UNLISTEN between the two.
      off();
      const again = await lazy.subscribe({ queue: ALL_QUEUES }, (e) => seen.push(e));
      await new Promise((r) => setTimeout(r, 120));
      expect(lazy.isListening).toBe(true);
      expect(unlistens()).toBe(1);
      again();
    } finally {
      await lazy.stop();
      await closeDb(own);
    }
  });
});
