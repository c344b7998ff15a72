import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '@pgdispatch/core/config';
import { silentLogger } from '@pgdispatch/core/log';
import { useTestDatabase } from '@pgdispatch/engine/testing/database';
import { countByState, insertFinishedJobs } from '@pgdispatch/engine/testing/factories';
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
