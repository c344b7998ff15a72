import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DispatchError } from '@pgdispatch/core/errors';
import { createTestDatabase, type TestDatabase } from '../testing/database.js';
import { insertJob } from '../testing/factories.js';
import { jobClaim } from './job-claim.js';
import { jobComplete } from './job-complete.js';
import { EVENTS_CHANNEL, MAX_EVENT_BYTES, jobProgress } from './job-events.js';

let db: TestDatabase;
let events: unknown[] = [];
let unlisten: () => Promise<void>;
beforeAll(async () => {
  db = await createTestDatabase();
  const sub = await db.connect(1).listen(EVENTS_CHANNEL, (p) => events.push(JSON.parse(p)));
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
    if (Date.now() > end) throw new Error('timed out waiting for an event');
    await sleep(10);
  }
}

describe('jobProgress', () => {
  it('publishes a progress event for the lease holder, delivered on commit', async () => {
    await insertJob(db.sql, { queue: 'progress' });
    const [c] = await jobClaim(db.sql, { queues: ['progress'], limit: 1, leaseMs: 30_000 });
    events = [];
    await db.sql.begin(async (tx) => {
      await jobProgress(tx, { id: c!.id, leaseToken: c!.leaseToken, data: { pct: 50 } });
      await sleep(100);
      expect(events).toEqual([]);
    });
    await until(() => events.length > 0);
    expect(events).toEqual([{ id: c!.id, type: 'progress', data: { pct: 50 } }]);
  });

  it('a stale holder gets lease_lost and publishes nothing', async () => {
    await insertJob(db.sql, { queue: 'progress-stale' });
    const [c] = await jobClaim(db.sql, { queues: ['progress-stale'], limit: 1, leaseMs: 30_000 });
    await jobComplete(db.sql, { id: c!.id, leaseToken: c!.leaseToken });
    events = [];
    const err = await jobProgress(db.sql, { id: c!.id, leaseToken: c!.leaseToken, data: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DispatchError);
    expect((err as DispatchError).code).toBe('lease_lost');
    await sleep(100);
    expect(events).toEqual([]);
  });

  it('rejects data over the NOTIFY budget as payload_too_large, and non-JSON data as invalid_request', async () => {
    await insertJob(db.sql, { queue: 'progress-big' });
    const [c] = await jobClaim(db.sql, { queues: ['progress-big'], limit: 1, leaseMs: 30_000 });
    const ref = { id: c!.id, leaseToken: c!.leaseToken };
    await expect(jobProgress(db.sql, { ...ref, data: 'x'.repeat(MAX_EVENT_BYTES) })).rejects.toMatchObject({ code: 'payload_too_large' });
    await expect(jobProgress(db.sql, { ...ref, data: { n: 10n } })).rejects.toMatchObject({ code: 'invalid_request' });
  });
});
