import type { Config } from '@pgdispatch/core/config';
import type { Sql } from '@pgdispatch/engine/db';
import { jobEventsPurge } from '@pgdispatch/engine/queries/job-events';
import { jobPurge, jobReapExpiredLeases, jobsDeadRows, jobsVacuum } from '@pgdispatch/engine/queries/job-maintenance';
import type { Logger } from '@pgdispatch/core/log';

/** Purge runs less often than the reaper: retention is measured in hours, leases in seconds. */
const PURGE_INTERVAL_MS = 60_000;
/**
 * A tick that reached its cap left finished jobs behind: the next one starts this soon instead.
 * With a fixed 60 s tick capped at 100,000 jobs the purge kept up with 1,667 jobs/s at most, and
 * the bench's soak at ~3,000 jobs/s grew `jobs` 10× in 300k jobs whatever the retention.
 */
const PURGE_CATCH_UP_MS = 1_000;
/** Most finished jobs one tick deletes (batches of PURGE_BATCH keep each delete short). */
const PURGE_CAP = 100_000;
const PURGE_BATCH = 5_000;

/**
 * How often the dead rows of `jobs` are checked against VACUUM_DEAD_ROWS. At 8,000 jobs/s a 5 s
 * period vacuumed every ~80k dead rows (0.1–0.6 s per VACUUM) and the soak held its rate (engine
 * job-maintenance.ts, jobsVacuum).
 */
const VACUUM_CHECK_MS = 5_000;

/** Overrides for tests: the purge's and the vacuum check's pacing. */
export interface MaintenanceTiming {
  vacuumCheckMs?: number;
  /** Delay of the first purge tick (default: the interval). */
  purgeFirstMs?: number;
  purgeIntervalMs?: number;
  purgeCatchUpMs?: number;
  purgeCap?: number;
}

/**
 * Lease reaper, retention purge and the vacuum of `jobs`, on every api/all pod. The reaper and the
 * purge take rows with SKIP LOCKED or by id, and the vacuum skips a table another pod is vacuuming,
 * so pods running them side by side do not conflict. Errors are logged and retried next tick.
 */
export function startMaintenance(deps: { sql: Sql; config: Readonly<Config>; log: Logger; timing?: MaintenanceTiming }): { stop(): Promise<void> } {
  const { sql, config, log } = deps;
  const cap = deps.timing?.purgeCap ?? PURGE_CAP;
  const batch = Math.min(PURGE_BATCH, cap);
  let busy = Promise.resolve();
  const tick = (fn: () => Promise<void>) => () => {
    busy = busy.then(fn).catch((err: unknown) => log.warn('maintenance failed', { error: String(err) }));
  };
  const reap = tick(async () => {
    const reaped = await jobReapExpiredLeases(sql);
    if (reaped.length > 0) log.info('reaped expired leases', { count: reaped.length, ids: reaped.slice(0, 20).map((r) => r.id) });
  });
  /** One purge tick; true when it stopped at a cap with more left to delete. */
  const purgeOnce = async (): Promise<boolean> => {
    let total = 0;
    let n: number;
    let behind = false;
    // Batches keep each delete short; the cap bounds one tick's work.
    do {
      n = await jobPurge(sql, { retentionSeconds: config.RETENTION_SECONDS, failedRetentionSeconds: config.RETENTION_FAILED_SECONDS, batchSize: batch });
      total += n;
    } while (n >= batch && total < cap);
    if (n >= batch) behind = true;
    if (total > 0) log.info('purged finished jobs', { count: total });
    // Events outnumber jobs (about three per job), hence bigger batches and a higher cap.
    let events = 0;
    do {
      n = await jobEventsPurge(sql, { retentionSeconds: config.EVENT_RETENTION_SECONDS, batchSize: 10_000 });
      events += n;
    } while (n >= 10_000 && events < 1_000_000);
    if (n >= 10_000) behind = true;
    if (events > 0) log.info('purged job events', { count: events });
    return behind;
  };
  const reaper = setInterval(reap, config.REAPER_INTERVAL_MS);
  reaper.unref();
  // The purge schedules itself: the next tick comes after the interval, or soon when this one
  // was cut off by its cap, so a high finish rate is purged as fast as it finishes.
  let stopped = false;
  let purgeTimer: NodeJS.Timeout | undefined;
  const schedulePurge = (ms: number) => {
    if (stopped) return;
    purgeTimer = setTimeout(() => {
      busy = busy
        .then(purgeOnce)
        .catch((err: unknown) => {
          log.warn('maintenance failed', { error: String(err) });
          return false;
        })
        .then((behind) => schedulePurge(behind ? (deps.timing?.purgeCatchUpMs ?? PURGE_CATCH_UP_MS) : (deps.timing?.purgeIntervalMs ?? PURGE_INTERVAL_MS)));
    }, ms);
    purgeTimer.unref();
  };
  schedulePurge(deps.timing?.purgeFirstMs ?? deps.timing?.purgeIntervalMs ?? PURGE_INTERVAL_MS);
  // Its own chain, not `busy`: a VACUUM of a large table takes seconds, and the reaper must not
  // wait for it (VACUUM's lock does not conflict with the reaper's or the purge's row writes).
  let vacuuming = Promise.resolve();
  let vacuumTimer: NodeJS.Timeout | undefined;
  const vacuumOnce = async () => {
    const dead = await jobsDeadRows(sql);
    if (dead < config.VACUUM_DEAD_ROWS) return;
    const started = Date.now();
    await jobsVacuum(sql);
    log.info('vacuumed jobs', { deadRows: dead, ms: Date.now() - started });
  };
  const scheduleVacuum = () => {
    if (stopped || config.VACUUM_DEAD_ROWS === 0) return;
    vacuumTimer = setTimeout(() => {
      vacuuming = vacuumOnce()
        .catch((err: unknown) => log.warn('vacuum of jobs failed', { error: String(err) }))
        .then(scheduleVacuum);
    }, deps.timing?.vacuumCheckMs ?? VACUUM_CHECK_MS);
    vacuumTimer.unref();
  };
  scheduleVacuum();
  return {
    stop: async () => {
      stopped = true;
      clearInterval(reaper);
      if (purgeTimer) clearTimeout(purgeTimer);
      if (vacuumTimer) clearTimeout(vacuumTimer);
      await Promise.all([busy, vacuuming]);
    },
  };
}
