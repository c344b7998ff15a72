import type { Config } from '@pgdispatch/core/config';
import type { Sql } from '@pgdispatch/engine/db';
import { eventPartitionSeconds, jobEventPartitionsMaintain } from '@pgdispatch/engine/queries/job-event-partitions';
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
/**
 * A tick that deleted at least a full batch (but stopped under its cap) comes back this soon: at a
 * steady high finish rate the 60 s interval let ~60 s of finished jobs pile up between ticks (the
 * soak at ~7,600 jobs/s held 916k rows at its end where its 30 s retention asks for ~230k).
 */
const PURGE_BUSY_MS = 5_000;
/** Longest period between two runs of the job_events partition upkeep. */
const PARTITION_CHECK_MAX_MS = 600_000;
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
  purgeBusyMs?: number;
  /** Period of the job_events partition upkeep (default: half a partition's width, at most 10 min). */
  partitionIntervalMs?: number;
}

/**
 * Lease reaper, retention purge, the partitions of `job_events` and the vacuum of `jobs`, on every
 * api/all pod. The reaper and the purge take rows with SKIP LOCKED or by id, partition changes run
 * under an advisory lock, and the vacuum skips a table another pod is vacuuming, so pods running
 * them side by side do not conflict. Errors are logged and retried next tick.
 */
export function startMaintenance(deps: { sql: Sql; config: Readonly<Config>; log: Logger; timing?: MaintenanceTiming }): { stop(): Promise<void> } {
  const { sql, config, log } = deps;
  const cap = deps.timing?.purgeCap ?? PURGE_CAP;
  const batch = Math.min(PURGE_BATCH, cap);
  const purgeInterval = deps.timing?.purgeIntervalMs ?? PURGE_INTERVAL_MS;
  let busy = Promise.resolve();
  const tick = (fn: () => Promise<void>) => () => {
    busy = busy.then(fn).catch((err: unknown) => log.warn('maintenance failed', { error: String(err) }));
  };
  const reap = tick(async () => {
    const reaped = await jobReapExpiredLeases(sql);
    if (reaped.length > 0) log.info('reaped expired leases', { count: reaped.length, ids: reaped.slice(0, 20).map((r) => r.id) });
  });
  /** One purge tick: the delay until the next one (soon when it had work, sooner when it stopped at a cap). */
  const purgeOnce = async (): Promise<number> => {
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
    // Only the default partition's events go row by row (the range partitions are dropped whole);
    // it is small unless partitions could not be made, hence the same pacing as before.
    let events = 0;
    do {
      const purged = await jobEventsPurge(sql, { retentionSeconds: config.EVENT_RETENTION_SECONDS, batchSize: 10_000 });
      n = purged.rows;
      events += purged.events;
    } while (n >= 10_000 && events < 1_000_000); // rows per batch, events per tick
    if (n >= 10_000) behind = true;
    if (events > 0) log.info('purged job events', { count: events });
    if (behind) return deps.timing?.purgeCatchUpMs ?? PURGE_CATCH_UP_MS;
    return total >= batch ? Math.min(deps.timing?.purgeBusyMs ?? PURGE_BUSY_MS, purgeInterval) : purgeInterval;
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
          return purgeInterval;
        })
        .then(schedulePurge);
    }, ms);
    purgeTimer.unref();
  };
  schedulePurge(deps.timing?.purgeFirstMs ?? purgeInterval);
  // Partitions of job_events: made two widths ahead and checked every half width (at most every
  // 10 min: with the default day of retention a width is 3 h), on their own chain (a long purge
  // tick must not let the partitions run out), first at once on start.
  const width = eventPartitionSeconds(config.EVENT_RETENTION_SECONDS);
  let partitioning = Promise.resolve();
  const partitionOnce = () => {
    partitioning = partitioning
      .then(async () => {
        const r = await jobEventPartitionsMaintain(sql, { retentionSeconds: config.EVENT_RETENTION_SECONDS, widthSeconds: width });
        if (r.created.length > 0 || r.dropped.length > 0) log.info('job event partitions', { created: r.created, dropped: r.dropped });
        if (r.skipped > 0) log.warn('job event partition change skipped: lock busy, retried next tick', { skipped: r.skipped });
      })
      .catch((err: unknown) => log.warn('job event partitions failed', { error: String(err) }));
  };
  partitionOnce();
  const partitionTimer = setInterval(partitionOnce, deps.timing?.partitionIntervalMs ?? Math.min(PARTITION_CHECK_MAX_MS, width * 500));
  partitionTimer.unref();
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
      clearInterval(partitionTimer);
      if (purgeTimer) clearTimeout(purgeTimer);
      if (vacuumTimer) clearTimeout(vacuumTimer);
      await Promise.all([busy, vacuuming, partitioning]);
    },
  };
}
