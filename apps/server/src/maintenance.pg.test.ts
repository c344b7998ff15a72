import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '@pgdispatch/core/config';
import { silentLogger } from '@pgdispatch/core/log';
import { useTestDatabase } from '@pgdispatch/engine/testing/database';
import { countByState, insertFinishedJobs, jobsManualVacuums, makeDeadJobRows } from '@pgdispatch/engine/testing/factories';
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
