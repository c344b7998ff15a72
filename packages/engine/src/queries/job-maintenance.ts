import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';
import { wokenCte } from './fenced.js';

/**
 * Expired leases: running jobs whose lease_expires_at passed (by the database's clock). Each one
 * counts as a spent attempt: → retry_waiting (runnable now), failed when attempts are spent,
 * cancelled when a cancel was requested. SKIP LOCKED lets many api pods reap side by side.
 *
 * `run_at` is left as it was: it is already in the past (the job was claimed), so the job is
 * runnable at once and keeps its place in `priority, run_at, id` order. Setting `run_at = now()`
 * sent it behind every job enqueued since — one was re-claimed 31 s after its lease expired,
 * behind a backlog (issue #10).
 *
 * NOTIFY (at commit) for each queue that got a runnable job back and for each concurrency-limited
 * queue whose running slot the expiry freed.
 */
export async function jobReapExpiredLeases(exec: Exec, params: { limit?: number } = {}): Promise<{ id: number; queue: string; state: string }[]> {
  return pg(exec.unsafe<{ id: number; queue: string; state: string }[]>(
    `with expired as (
       select id, queue from jobs where state = 'running' and lease_expires_at < now()
        order by lease_expires_at limit $1 for update skip locked
     ), reaped as (
       update jobs j set
          state = case when j.cancel_requested then 'cancelled' when j.attempt >= j.max_attempts then 'failed' else 'retry_waiting' end,
          lease_token = null, lease_expires_at = null, updated_at = now(),
          last_error = jsonb_build_object('message', 'lease expired', 'name', 'LeaseExpired', 'attempt', j.attempt, 'retryable', true),
          finished_at = case when j.cancel_requested or j.attempt >= j.max_attempts then now() else null end
         from expired where j.id = expired.id
       returning j.id, j.queue, j.state, expired.queue as ran_in
     ), ${wokenCte('reaped', 'retry_waiting', 'ran_in')}
     select reaped.id, reaped.queue, reaped.state from reaped cross join woken`,
    [params.limit ?? 1000] as never[],
  ));
}

export interface PurgeParams {
  /** Default retention of succeeded and cancelled jobs, in seconds. */
  retentionSeconds: number;
  /** Retention of failed jobs, in seconds. */
  failedRetentionSeconds: number;
  /** Rows per delete (default 5000): small batches keep locks and WAL bursts short. */
  batchSize?: number;
}

/**
 * Deletes one batch of finished jobs past their retention (the queue's retention_seconds when
 * set), with their steps (the same statement: job_steps has no foreign key, migrations/0011).
 * Returns how many jobs went; call again while it returns batchSize.
 *
 * Two conditions on finished_at: the second is the rule (per row: failed jobs keep
 * failedRetentionSeconds, others their queue's retention or the default), but it depends on the
 * row's state and queue, so no index can serve it. The first is the smallest retention any job
 * can have — a constant for the statement — so it bounds a range scan of jobs_finished_idx to
 * the finished jobs old enough to possibly qualify, instead of every finished job in the table.
 *
 * `order by finished_at`: oldest first, and it is what makes the planner walk jobs_finished_idx.
 * Without it, it estimated the finished rows at a fraction of a large table and chose a
 * sequential scan that stops at the limit: 230 ms per batch of 5,000 on 1.5M rows (1.2M removed
 * by its filter; PostgreSQL 15), against 52 ms with the index (18 of them the foreign key's cascade
 * to job_steps, before 0011). In the bench's 2M soak the purge ran 135–626 ms per batch and took the time the
 * claims needed.
 */
export async function jobPurge(exec: Exec, params: PurgeParams): Promise<number> {
  const rows = await pg(exec.unsafe<{ n: number }[]>(
    `with gone as (
       delete from jobs where id in (
         select j.id from jobs j left join queues q on q.name = j.queue
          where j.finished_at is not null
            and j.finished_at < now() - make_interval(secs => least($1::int, $2::int, coalesce((select min(retention_seconds) from queues), $1::int)))
            and j.finished_at < now() - make_interval(secs => case when j.state = 'failed' then $2::int else coalesce(q.retention_seconds, $1::int) end)
          order by j.finished_at
          limit $3
       ) returning id
     ), steps as (
       delete from job_steps s using gone where s.job_id = gone.id
     ) select count(*)::int as n from gone`,
    [params.retentionSeconds, params.failedRetentionSeconds, params.batchSize ?? 5000] as never[],
  ));
  return rows[0]?.n ?? 0;
}

/**
 * Dead row versions in `jobs` by PostgreSQL's statistics (pg_stat_user_tables.n_dead_tup; the
 * counters lag the writes by up to a second). Every claim and completion leaves one.
 */
export async function jobsDeadRows(exec: Exec): Promise<number> {
  const [r] = await pg(exec<{ n: number }[]>`
    select coalesce((select n_dead_tup from pg_stat_user_tables where relid = 'jobs'::regclass), 0)::float8 as n`);
  return r?.n ?? 0;
}

/**
 * VACUUM of `jobs` (never FULL: no lock that blocks claims or writes). SKIP_LOCKED: when another
 * pod's vacuum (or autovacuum) holds the table it returns at once instead of queueing behind it.
 *
 * Why the product vacuums its own hot table: a claim walks its claim index from the head, and the
 * index entries of the rows claimed since the last vacuum sit there; only vacuum removes them.
 * Autovacuum visits a database at most once per `autovacuum_naptime` (60 s by default) and is
 * off on some servers. In the bench's soak (8,000 jobs/s offered, `all`, embedded PostgreSQL 18)
 * the claim of ~250 jobs went from 20 ms to 95–260 ms while 470k dead rows piled up before the
 * first autovacuum, and the run kept up with its offered rate for 80k of 400k jobs; with a VACUUM
 * of `jobs` every ~5 s (0.1–0.6 s each) it kept up for the whole run. docs/architecture.md §15.
 */
export async function jobsVacuum(exec: Exec): Promise<void> {
  await pg(exec.unsafe('vacuum (skip_locked) jobs'));
}
