import type { ClaimedJob, Job, JobState } from '@pgdispatch/core/types';
import type { Exec } from '../db.js';
import { jobClaim } from '../queries/job-claim.js';
import { eventPartitionName, jobEventPartitions } from '../queries/job-event-partitions.js';
import { JOB_COLUMNS } from '../queries/rows.js';

/** Inserts a job directly in any state (tests only): `insertJob(sql, { state: 'running' })`. */
export async function insertJob(exec: Exec, opts: { queue?: string; task?: string; state?: JobState; payload?: unknown; priority?: number; runAtOffsetMs?: number; attempt?: number; maxAttempts?: number; leaseMs?: number } = {}): Promise<Job> {
  const state = opts.state ?? 'queued';
  const [job] = await exec.unsafe<Job[]>(
    `insert into jobs (queue, task, payload, state, priority, run_at, attempt, max_attempts, lease_token, lease_expires_at, finished_at)
     values ($1, $2, $3::text::jsonb, $4, $5, now() + $6 * interval '1 millisecond', $7, $8,
             case when $4 = 'running' then gen_random_uuid() end,
             case when $4 = 'running' then now() + $9 * interval '1 millisecond' end,
             case when $4 in ('succeeded', 'failed', 'cancelled') then now() end)
     returning ${JOB_COLUMNS}`,
    [opts.queue ?? 'default', opts.task ?? 'noop', JSON.stringify(opts.payload ?? {}), state, opts.priority ?? 0, opts.runAtOffsetMs ?? 0,
      opts.attempt ?? (state === 'running' ? 1 : 0), opts.maxAttempts ?? 5, opts.leaseMs ?? 30_000] as never[],
  );
  return job as Job;
}

/** Job counts by state. */
export async function countByState(exec: Exec, queue?: string): Promise<Partial<Record<JobState, number>>> {
  const rows = await exec<{ state: JobState; n: number }[]>`
    select state, count(*)::int as n from jobs where (${queue ?? null}::text is null or queue = ${queue ?? null}) group by state`;
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

/** Claims exactly one job of `queue` (throws when there is none). */
export async function claimOne(exec: Exec, queue: string, leaseMs = 30_000): Promise<ClaimedJob> {
  const [c] = await jobClaim(exec, { queues: [queue], limit: 1, leaseMs });
  if (!c) throw new Error(`nothing to claim in ${queue}`);
  return c;
}

/** Ends a running job's lease now, as if its holder vanished (tests only): the next reap takes the job back. */
export async function expireLease(exec: Exec, id: number): Promise<void> {
  await exec`update jobs set lease_expires_at = now() - interval '1 millisecond' where id = ${id} and state = 'running'`;
}

/**
 * Kills the connections of this database whose last statement was a LISTEN (tests only), as a
 * network drop would; notifications sent until they are back are lost. Returns how many it ended.
 */
export async function terminateListeners(exec: Exec): Promise<number> {
  const rows = await exec`select pg_terminate_backend(pid) from pg_stat_activity
                           where datname = current_database() and pid <> pg_backend_pid() and query ilike 'listen%'`;
  return rows.length;
}

/** Inserts `count` succeeded jobs finished `agoSeconds` ago (tests only): a retention backlog. */
export async function insertFinishedJobs(exec: Exec, opts: { count: number; agoSeconds: number; queue?: string }): Promise<void> {
  await exec`
    insert into jobs (queue, task, state, attempt, finished_at)
    select ${opts.queue ?? 'default'}, 'noop', 'succeeded', 1, now() - ${opts.agoSeconds} * interval '1 second'
      from generate_series(1, ${opts.count})`;
}

/** Manual VACUUMs of `jobs` so far, by pg_stat_user_tables (tests only; autovacuum's are counted apart). */
export async function jobsManualVacuums(exec: Exec): Promise<number> {
  const [r] = await exec<{ n: number }[]>`select vacuum_count::int as n from pg_stat_user_tables where relid = 'jobs'::regclass`;
  return r?.n ?? 0;
}

/** Leaves `count` dead row versions in `jobs` (tests only): inserts finished jobs and deletes them. */
export async function makeDeadJobRows(exec: Exec, opts: { count: number; queue: string }): Promise<void> {
  await insertFinishedJobs(exec, { count: opts.count, agoSeconds: 0, queue: opts.queue });
  await exec`delete from jobs where queue = ${opts.queue}`;
}

/**
 * Drops every range partition of `job_events` (tests only), so new events land in the default
 * partition: the path taken when maintenance has not made partitions. Their rows go with them.
 */
export async function dropEventRangePartitions(exec: Exec): Promise<void> {
  for (const p of await jobEventPartitions(exec)) await exec.unsafe(`drop table ${p.name}`);
}

/** Attaches a range partition `job_events_<from>_<to>` by hand (tests only), bounds in epoch seconds. */
export async function attachEventPartition(exec: Exec, from: number, to: number): Promise<string> {
  const name = eventPartitionName(from, to);
  await exec.unsafe(`create table ${name} partition of job_events for values from (to_timestamp(${from})) to (to_timestamp(${to}))`);
  return name;
}

/** The database's clock in epoch seconds (tests only). */
export async function dbEpochSeconds(exec: Exec): Promise<number> {
  const [r] = await exec<{ now: number }[]>`select extract(epoch from now())::float8 as now`;
  return Number(r!.now);
}

/** Inserts an event row created `agoSeconds` ago (tests only). */
export async function insertEventAgo(exec: Exec, opts: { jobId: number; queue: string; agoSeconds: number }): Promise<number> {
  const [r] = await exec<{ id: number }[]>`
    insert into job_events (job_id, queue, type, data, created_at)
    values (${opts.jobId}, ${opts.queue}, 'progress', '{}'::jsonb, now() - ${opts.agoSeconds} * interval '1 second') returning id`;
  return r!.id;
}

/**
 * Every stored event, read from the raw rows of `job_events` and expanded here in JS (tests only):
 * an oracle for the engine's readers, which expand in SQL. A row holds one event (`job_id`) or a
 * statement's events (`job_ids`, event `id + k`), migrations/0010.
 */
export async function storedEvents(exec: Exec, where: { jobId?: number; queue?: string } = {}): Promise<StoredEvent[]> {
  const rows = await exec<{ id: number; jobId: number | null; jobIds: number[] | null; data: unknown; datas: unknown[] | null; queue: string; type: string; createdAt: Date; part: string }[]>`
    select id, job_id as "jobId", job_ids as "jobIds", data, datas, queue, type, created_at as "createdAt", tableoid::regclass::text as part from job_events
     where ${where.queue ?? null}::text is null or queue = ${where.queue ?? null}`;
  const out = rows.flatMap((r) => (r.jobIds ?? [r.jobId!]).map((jobId, k) => ({
    id: Number(r.id) + k, jobId: Number(jobId), queue: r.queue, type: r.type, data: r.datas ? r.datas[k] : r.data, createdAt: r.createdAt, part: r.part,
  })));
  return out.filter((e) => where.jobId === undefined || e.jobId === where.jobId).sort((a, b) => a.id - b.id);
}

export interface StoredEvent {
  id: number;
  jobId: number;
  queue: string;
  type: string;
  data: unknown;
  createdAt: Date;
  /** The partition that holds it. */
  part: string;
}

/** Which table of `job_events` holds each event id (tests only). */
export async function eventPartitionOf(exec: Exec, ids: number[]): Promise<Map<number, string>> {
  const wanted = new Set(ids);
  return new Map((await storedEvents(exec)).filter((e) => wanted.has(e.id)).map((e) => [e.id, e.part]));
}
