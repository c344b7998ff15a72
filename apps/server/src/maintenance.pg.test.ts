import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '@pgdispatch/core/config';
import { silentLogger } from '@pgdispatch/core/log';
import { useTestDatabase } from '@pgdispatch/engine/testing/database';
import { attachEventPartition, countByState, dbEpochSeconds, dropEventRangePartitions, insertEventAgo, insertFinishedJobs, jobsManualVacuums, makeDeadJobRows } from '@pgdispatch/engine/testing/factories';
import { jobEventPartitions } from '@pgdispatch/engine/queries/job-event-partitions';
import { jobEventsList } from '@pgdispatch/engine/queries/job-events';
import { jobsDeadRows } from '@pgdispatch/engine/queries/job-maintenance';
import { startMaintenance } from './maintenance.js';

const db = useTestDatabase();
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

const left = async (queue: string) => (await countByState(db.sql, queue)).succeeded ?? 0;

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

describe('retention purge pacing', () => {
  const config = parseConfig({ RETENTION_SECONDS: '60' });
  // The first tick at once, every regular tick an hour apart, at most 5,000 jobs per tick.
  const timing = { purgeFirstMs: 0, purgeIntervalMs: 3_600_000, purgeCatchUpMs: 20, purgeCap: 5_000 };

  it('a tick cut off by its cap is followed at once by the next, not after the interval', async () => {
    const queue = 'purge-catch-up';
    await insertFinishedJobs(db.sql, { queue, count: 12_000, agoSeconds: 3_600 });
    const m = startMaintenance({ sql: db.sql, config, log: silentLogger, timing });
    stops.push(() => m.stop());
    // Only catch-up ticks can delete all 12,000 now: the first tick stops at 5,000 and the next
    // regular one is an hour away.
    expect(await waitFor(async () => (await left(queue)) === 0, 20_000)).toBe(true);
  });

  it('a tick that finished its work waits for the interval (no hot loop)', async () => {
    const queue = 'purge-caught-up';
    await insertFinishedJobs(db.sql, { queue, count: 3_000, agoSeconds: 3_600 });
    const m = startMaintenance({ sql: db.sql, config, log: silentLogger, timing });
    stops.push(() => m.stop());
    expect(await waitFor(async () => (await left(queue)) === 0, 20_000)).toBe(true);
    // Rows that become purgeable after a tick below the cap wait for the next regular tick.
    await insertFinishedJobs(db.sql, { queue, count: 100, agoSeconds: 3_600 });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await left(queue)).toBe(100);
  });

  it('a tick that deleted a full batch comes back after the busy delay, not the interval', async () => {
    const queue = 'purge-busy';
    // 6,000 ≥ one batch of 5,000 but under the cap: a steady high finish rate looks like this.
    await insertFinishedJobs(db.sql, { queue, count: 6_000, agoSeconds: 3_600 });
    const m = startMaintenance({ sql: db.sql, config, log: silentLogger, timing: { ...timing, purgeCap: 100_000, purgeBusyMs: 300 } });
    stops.push(() => m.stop());
    expect(await waitFor(async () => (await left(queue)) === 0, 20_000)).toBe(true);
    // The interval is an hour: only the busy tick can take these.
    await insertFinishedJobs(db.sql, { queue, count: 100, agoSeconds: 3_600 });
    expect(await waitFor(async () => (await left(queue)) === 0, 5_000)).toBe(true);
  });
});

describe('partitions of job_events', () => {
  it('are made ahead at start and dropped once past EVENT_RETENTION_SECONDS, with their events', async () => {
    await dropEventRangePartitions(db.sql);
    const now = Math.floor(await dbEpochSeconds(db.sql));
    const expired = await attachEventPartition(db.sql, now - 7_200, now - 3_600);
    const id = await insertEventAgo(db.sql, { jobId: 1, queue: 'part-maint', agoSeconds: 5_000 });
    expect((await jobEventsList(db.sql, { queue: 'part-maint' })).map((e) => e.id)).toEqual([id]);
    // Retention 80 s: partitions of 10 s, made until one ends 20 s ahead.
    const m = startMaintenance({ sql: db.sql, config: parseConfig({ EVENT_RETENTION_SECONDS: '80' }), log: silentLogger, timing: { purgeFirstMs: 3_600_000, partitionIntervalMs: 50 } });
    stops.push(() => m.stop());
    expect(await waitFor(async () => !(await jobEventPartitions(db.sql)).some((p) => p.name === expired), 10_000)).toBe(true);
    expect(await jobEventsList(db.sql, { queue: 'part-maint' })).toEqual([]);
    const parts = await jobEventPartitions(db.sql);
    expect(parts.at(-1)!.to).toBeGreaterThanOrEqual(now + 20);
    expect(parts.filter((p) => p.from >= now).every((p) => p.to - p.from === 10)).toBe(true);
  });
});

describe('vacuum of the hot table', () => {
  const timing = { purgeFirstMs: 3_600_000, vacuumCheckMs: 50 };

  it('vacuums jobs once its dead rows reach VACUUM_DEAD_ROWS, and the dead rows are gone', async () => {
    const before = await jobsManualVacuums(db.sql);
    await makeDeadJobRows(db.sql, { count: 3_000, queue: 'vacuum-due' });
    // The statistics lag the delete by up to a second: wait until they show the dead rows.
    expect(await waitFor(async () => (await jobsDeadRows(db.sql)) >= 3_000, 10_000)).toBe(true);
    const m = startMaintenance({ sql: db.sql, config: parseConfig({ VACUUM_DEAD_ROWS: '2000' }), log: silentLogger, timing });
    stops.push(() => m.stop());
    expect(await waitFor(async () => (await jobsManualVacuums(db.sql)) > before, 10_000)).toBe(true);
    expect(await jobsDeadRows(db.sql)).toBeLessThan(3_000);
  });

  it('does not vacuum below the threshold, nor at all with VACUUM_DEAD_ROWS=0', async () => {
    await makeDeadJobRows(db.sql, { count: 500, queue: 'vacuum-not-due' });
    expect(await waitFor(async () => (await jobsDeadRows(db.sql)) >= 500, 10_000)).toBe(true);
    const before = await jobsManualVacuums(db.sql);
    for (const VACUUM_DEAD_ROWS of ['1000000', '0']) {
      const m = startMaintenance({ sql: db.sql, config: parseConfig({ VACUUM_DEAD_ROWS }), log: silentLogger, timing });
      // Twenty checks' worth of time.
      await new Promise((r) => setTimeout(r, 1_000));
      await m.stop();
    }
    expect(await jobsManualVacuums(db.sql)).toBe(before);
  });
});
