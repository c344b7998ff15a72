import { describe, expect, it } from 'vitest';
import type { ClaimedJob } from '@pgdispatch/core/types';
import { useTestDatabase } from '../testing/database.js';
import { claimOne, insertJob } from '../testing/factories.js';
import { jobGet } from './job-admin.js';
import { jobCompleteMany } from './job-complete.js';
import { jobFailMany } from './job-fail.js';
import { jobHeartbeatMany } from './job-heartbeat.js';
import { jobReapExpiredLeases } from './job-maintenance.js';
import { jobReleaseMany } from './job-release.js';

const db = useTestDatabase();
const LEASE = 30_000;

/**
 * A job whose first lease expired and was reaped, then claimed again: `stale` is the first
 * holder's lease, `live` the current one. Both name the same job id.
 */
async function staleAndLive(queue: string): Promise<{ stale: ClaimedJob; live: ClaimedJob }> {
  await insertJob(db.sql, { queue });
  const stale = await claimOne(db.sql, queue, LEASE);
  await db.sql`update jobs set lease_expires_at = now() - interval '1 second' where id = ${stale.id}`;
  await jobReapExpiredLeases(db.sql);
  await db.sql`update jobs set run_at = now() where id = ${stale.id}`;
  const live = await claimOne(db.sql, queue, LEASE);
  expect(live.id).toBe(stale.id);
  expect(live.leaseToken).not.toBe(stale.leaseToken);
  return { stale, live };
}
const ref = (j: ClaimedJob) => ({ id: j.id, leaseToken: j.leaseToken });

describe('a stale lease beside the live one for the same job in one batch', () => {
  it('fail: the live retryable failure decides (retry_waiting, live error); the stale non-retryable one is lease_lost', async () => {
    for (const order of ['live-first', 'stale-first'] as const) {
      const { stale, live } = await staleAndLive(`fence-fail-${order}`);
      const liveItem = { ...ref(live), error: { message: 'live boom' }, retryable: true };
      const staleItem = { ...ref(stale), error: { message: 'stale boom' }, retryable: false };
      const items = order === 'live-first' ? [liveItem, staleItem] : [staleItem, liveItem];
      const out = await jobFailMany(db.sql, { items });
      const liveOut = out[items.indexOf(liveItem)];
      const staleOut = out[items.indexOf(staleItem)];
      expect(liveOut).toMatchObject({ id: live.id, ok: true, state: 'retry_waiting' });
      expect(staleOut).toEqual({ id: stale.id, ok: false, code: 'lease_lost' });
      const row = await jobGet(db.sql, { id: live.id });
      expect(row.state).toBe('retry_waiting');
      expect(row.lastError).toMatchObject({ message: 'live boom', retryable: true, attempt: 2 });
    }
  });

  it('complete: the live result is stored and only the live item is ok', async () => {
    for (const order of ['live-first', 'stale-first'] as const) {
      const { stale, live } = await staleAndLive(`fence-complete-${order}`);
      const liveItem = { ...ref(live), result: 'live' };
      const staleItem = { ...ref(stale), result: 'stale' };
      const items = order === 'live-first' ? [liveItem, staleItem] : [staleItem, liveItem];
      const out = await jobCompleteMany(db.sql, { items });
      expect(out[items.indexOf(liveItem)]).toEqual({ id: live.id, ok: true });
      expect(out[items.indexOf(staleItem)]).toEqual({ id: stale.id, ok: false, code: 'lease_lost' });
      const row = await jobGet(db.sql, { id: live.id });
      expect(row).toMatchObject({ state: 'succeeded', result: 'live' });
    }
  });

  it('heartbeat: only the live item is extended and ok', async () => {
    const { stale, live } = await staleAndLive('fence-heartbeat');
    const out = await jobHeartbeatMany(db.sql, { items: [ref(stale), ref(live)], leaseMs: LEASE });
    expect(out[0]).toEqual({ id: stale.id, ok: false, code: 'lease_lost' });
    expect(out[1]).toMatchObject({ id: live.id, ok: true, cancelRequested: false });
    const out2 = await jobHeartbeatMany(db.sql, { items: [ref(live), ref(stale)], leaseMs: LEASE });
    expect(out2[0]).toMatchObject({ id: live.id, ok: true });
    expect(out2[1]).toEqual({ id: stale.id, ok: false, code: 'lease_lost' });
  });

  it('release: only the live item releases; the stale one is lease_lost', async () => {
    const { stale, live } = await staleAndLive('fence-release');
    const out = await jobReleaseMany(db.sql, { items: [ref(live), ref(stale)] });
    expect(out).toEqual([{ id: live.id, ok: true }, { id: stale.id, ok: false, code: 'lease_lost' }]);
    expect(await jobGet(db.sql, { id: live.id })).toMatchObject({ state: 'queued', attempt: 1 });
  });

  it('the same lease twice in one batch writes the row once; the repeat is refused, not applied again', async () => {
    await insertJob(db.sql, { queue: 'fence-dup' });
    const c = await claimOne(db.sql, 'fence-dup', LEASE);
    const out = await jobFailMany(db.sql, {
      items: [{ ...ref(c), error: { message: 'first' }, retryable: true }, { ...ref(c), error: { message: 'second' }, retryable: false }],
    });
    expect(out[0]).toMatchObject({ id: c.id, ok: true, state: 'retry_waiting' });
    expect(out[1]).toMatchObject({ id: c.id, ok: false, code: 'invalid_request' });
    expect((await jobGet(db.sql, { id: c.id })).lastError).toMatchObject({ message: 'first' });
  });
});
