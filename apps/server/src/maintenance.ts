import type { Config } from '@pgdispatch/core/config';
import type { Sql } from '@pgdispatch/engine/db';
import { jobEventsPurge } from '@pgdispatch/engine/queries/job-events';
import { jobPurge, jobReapExpiredLeases } from '@pgdispatch/engine/queries/job-maintenance';
import type { Logger } from '@pgdispatch/core/log';

/** Purge runs less often than the reaper: retention is measured in hours, leases in seconds. */
const PURGE_INTERVAL_MS = 60_000;

/**
 * Lease reaper and retention purge, on every api/all pod. Both take rows with SKIP LOCKED or by
 * id, so pods running them side by side do not conflict. Errors are logged and retried next tick.
 */
export function startMaintenance(deps: { sql: Sql; config: Readonly<Config>; log: Logger }): { stop(): Promise<void> } {
  const { sql, config, log } = deps;
  let busy = Promise.resolve();
  const tick = (fn: () => Promise<void>) => () => {
    busy = busy.then(fn).catch((err: unknown) => log.warn('maintenance failed', { error: String(err) }));
  };
  const reap = tick(async () => {
    const reaped = await jobReapExpiredLeases(sql);
    if (reaped.length > 0) log.info('reaped expired leases', { count: reaped.length, ids: reaped.slice(0, 20).map((r) => r.id) });
  });
  const purge = tick(async () => {
    let total = 0;
    let n: number;
    // Batches keep each delete short; the cap bounds one tick's work.
    do {
      n = await jobPurge(sql, { retentionSeconds: config.RETENTION_SECONDS, failedRetentionSeconds: config.RETENTION_FAILED_SECONDS, batchSize: 5000 });
      total += n;
    } while (n >= 5000 && total < 100_000);
    if (total > 0) log.info('purged finished jobs', { count: total });
    // Events outnumber jobs (about three per job), hence bigger batches and a higher cap.
    let events = 0;
    do {
      n = await jobEventsPurge(sql, { retentionSeconds: config.EVENT_RETENTION_SECONDS, batchSize: 10_000 });
      events += n;
    } while (n >= 10_000 && events < 1_000_000);
    if (events > 0) log.info('purged job events', { count: events });
  });
  const timers = [setInterval(reap, config.REAPER_INTERVAL_MS), setInterval(purge, PURGE_INTERVAL_MS)];
  for (const t of timers) t.unref();
  return {
    stop: async () => {
      for (const t of timers) clearInterval(t);
      await busy;
    },
  };
}
