import { inTx, type Exec, type Sql } from '../db.js';
import { isLockTimeout, pg } from '../pg-errors.js';

/**
 * Range partitions of `job_events` (migrations/0009): `job_events_<from>_<to>`, bounds in epoch
 * seconds, `from` 0 meaning MINVALUE. Anything else attached to the table (the default partition,
 * a partition made by hand) is left alone.
 */
const PARTITION_NAME = /^job_events_(\d+)_(\d+)$/;
/** Serialises partition changes across api pods (arbitrary, fixed; the migrator uses another). */
const PARTITION_LOCK_KEY = 7_240_311_902;
/**
 * How long a partition change may wait for its lock. Dropping a partition takes an ACCESS
 * EXCLUSIVE lock on `job_events`, and while it waits every insert of an event queues behind it:
 * claims and completions would stall for as long as it waits. Better to give up and retry on the
 * next tick.
 */
const LOCK_TIMEOUT = '100ms';
/** Attaching scans the default partition for rows in the new range; a large one gives up instead. */
const STATEMENT_TIMEOUT = '5s';
/** The first partition made after a gap starts this far from now, so no row already in the default partition falls into it. */
const START_MARGIN_SECONDS = 2;

/**
 * Width of one partition for a retention: an eighth of it (kept between 5 s and one day), so
 * about nine partitions exist at a time. An event is kept at least the retention and at most one
 * width longer, plus the time until the next upkeep run (half a width in the api): ~1.19× the retention.
 */
export function eventPartitionSeconds(retentionSeconds: number): number {
  return Math.min(86_400, Math.max(5, Math.ceil(retentionSeconds / 8)));
}

/** The name of the range partition for [from, to), epoch seconds (0 = MINVALUE). */
export function eventPartitionName(from: number, to: number): string {
  return `job_events_${from}_${to}`;
}

export interface EventPartition {
  name: string;
  /** Lower bound in epoch seconds; 0 = MINVALUE. */
  from: number;
  to: number;
}

export interface PartitionMaintenance {
  created: string[];
  dropped: string[];
  /** Changes given up on because their lock was busy (tried again on the next call). */
  skipped: number;
}

/** The range partitions of `job_events`, by lower bound. */
export async function jobEventPartitions(exec: Exec): Promise<EventPartition[]> {
  const rows = await pg(exec<{ name: string }[]>`
    select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
     where i.inhparent = 'job_events'::regclass`);
  const parts: EventPartition[] = [];
  for (const { name } of rows) {
    const m = PARTITION_NAME.exec(name);
    if (m) parts.push({ name, from: Number(m[1]), to: Number(m[2]) });
  }
  return parts.sort((a, b) => a.from - b.from);
}

/**
 * Keeps `job_events` partitioned ahead of time and drops what retention has released: creates
 * partitions of `widthSeconds` until one ends at least two widths from now, and drops every
 * partition whose upper bound is `retentionSeconds` or more in the past (every row in it is
 * older than the retention). Each change is its own transaction under an advisory lock, so
 * api pods running this side by side never create overlapping ranges.
 *
 * A new partition is created empty and then attached: ATTACH takes SHARE UPDATE EXCLUSIVE on
 * `job_events`, which does not block the inserts of claims and completions (CREATE … PARTITION OF
 * would take ACCESS EXCLUSIVE). Dropping does need ACCESS EXCLUSIVE, briefly; it waits at most
 * LOCK_TIMEOUT and is otherwise skipped until the next call.
 */
export async function jobEventPartitionsMaintain(sql: Sql, params: { retentionSeconds: number; widthSeconds: number }): Promise<PartitionMaintenance> {
  const width = Math.max(1, Math.floor(params.widthSeconds));
  const out: PartitionMaintenance = { created: [], dropped: [], skipped: 0 };
  // At most a day of partitions per call, so a clock far ahead cannot make it loop for long.
  for (let i = 0; i < 64; i++) {
    const made = await change(sql, out, async (tx) => {
      const now = await dbNow(tx);
      const last = (await jobEventPartitions(tx)).at(-1);
      if (last && last.to >= now + 2 * width) return null;
      const from = Math.max(last?.to ?? 0, Math.ceil(now) + START_MARGIN_SECONDS);
      const name = eventPartitionName(from, from + width);
      // Plain table first, then ATTACH (see above); the attach builds its indexes and primary key.
      await tx.unsafe(`create table ${name} (like job_events including defaults including constraints)`);
      await tx.unsafe(`alter table job_events attach partition ${name} for values from (to_timestamp(${from})) to (to_timestamp(${from + width}))`);
      return name;
    });
    if (made === null) break;
    out.created.push(made);
  }
  for (let i = 0; i < 64; i++) {
    const gone = await change(sql, out, async (tx) => {
      const now = await dbNow(tx);
      const first = (await jobEventPartitions(tx))[0];
      if (!first || first.to > now - params.retentionSeconds) return null;
      await tx.unsafe(`drop table ${first.name}`);
      return first.name;
    });
    if (gone === null) break;
    out.dropped.push(gone);
  }
  return out;
}

async function dbNow(tx: Exec): Promise<number> {
  const [row] = await tx.unsafe<{ now: number }[]>(`select extract(epoch from clock_timestamp())::float8 as now`);
  return Number(row!.now);
}

/**
 * One partition change in its own transaction. Null when there was nothing to do or its lock was
 * busy (55P03, counted in `skipped`), so the caller stops for this call either way.
 */
async function change(sql: Sql, out: PartitionMaintenance, fn: (tx: Exec) => Promise<string | null>): Promise<string | null> {
  try {
    return await pg(inTx(sql, async (tx) => {
      await tx.unsafe(`set local lock_timeout = '${LOCK_TIMEOUT}'`);
      await tx.unsafe(`set local statement_timeout = '${STATEMENT_TIMEOUT}'`);
      await tx.unsafe(`select pg_advisory_xact_lock(${PARTITION_LOCK_KEY})`);
      return fn(tx);
    }));
  } catch (err) {
    if (!isLockTimeout(err)) throw err;
    out.skipped += 1;
    return null;
  }
}
