import { DispatchError, invalidRequest, notFound } from '@pgdispatch/core/errors';
import { isValidQueueName } from '@pgdispatch/core/queue-name';
import { JOB_STATES } from '@pgdispatch/core/types';
import type { Job, JobState } from '@pgdispatch/core/types';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';
import { refuseUnheld, scopeParam, type QueueScope } from './fenced.js';
import { JOB_COLUMNS } from './rows.js';
import { JOBS_CHANNEL } from '../notify.js';

export async function jobGet(exec: Exec, params: { id: number }): Promise<Job> {
  const [job] = await pg(exec.unsafe<Job[]>(`select ${JOB_COLUMNS} from jobs where id = $1`, [params.id] as never[]));
  if (!job) throw notFound('job', params.id);
  return job;
}

/**
 * A job with the data of its latest progress event (null when it reported none, or when that
 * event is past EVENT_RETENTION_SECONDS): one index probe of job_events_job_idx, read backwards.
 */
export async function jobGetWithProgress(exec: Exec, params: { id: number }): Promise<Job & { progress: unknown }> {
  const [job] = await pg(exec.unsafe<(Job & { progress: unknown })[]>(
    `select ${JOB_COLUMNS},
            (select e.data from job_events e where e.job_id = jobs.id and e.type = 'progress' order by e.id desc limit 1) as progress
       from jobs where id = $1`,
    [params.id] as never[],
  ));
  if (!job) throw notFound('job', params.id);
  return job;
}

export interface JobListParams {
  queue?: string;
  state?: JobState;
  task?: string;
  /** Only children of this job. */
  parentId?: number;
  /** Only jobs created at or after / before these times. */
  createdAfter?: Date;
  createdBefore?: Date;
  /** true: only dead-lettered jobs (`dead_letter_from` set); false: only the others. */
  deadLettered?: boolean;
  /** Cursor: only jobs with a smaller id (newest first). */
  beforeId?: number;
  /** Page size (default 50, at most 500). */
  limit?: number;
}

/** Lists jobs newest first with keyset pagination; `nextCursor` is the last id when more may follow. */
export async function jobList(exec: Exec, params: JobListParams): Promise<{ jobs: Job[]; nextCursor: number | null }> {
  const limit = Math.min(Math.max(params.limit ?? 50, 1), 500);
  if (params.state !== undefined && !JOB_STATES.includes(params.state)) throw invalidRequest(`unknown state ${params.state}`);
  if (params.queue !== undefined && !isValidQueueName(params.queue)) throw invalidRequest('invalid queue name');
  const jobs = await pg(exec.unsafe<Job[]>(
    `select ${JOB_COLUMNS} from jobs
      where ($1::text is null or queue = $1) and ($2::text is null or state = $2)
        and ($3::text is null or task = $3) and ($4::bigint is null or id < $4)
        and ($6::bigint is null or parent_id = $6)
        and ($7::timestamptz is null or created_at >= $7) and ($8::timestamptz is null or created_at < $8)
        and ($9::boolean is null or (dead_letter_from is not null) = $9)
      order by id desc limit $5`,
    [params.queue ?? null, params.state ?? null, params.task ?? null, params.beforeId ?? null, limit,
      params.parentId ?? null, params.createdAfter ?? null, params.createdBefore ?? null, params.deadLettered ?? null] as never[],
  ));
  return { jobs, nextCursor: jobs.length === limit ? (jobs.at(-1)?.id ?? null) : null };
}

/**
 * Cancels a job: waiting (queued, retry_waiting) → cancelled at once; running → cancel_requested,
 * which the worker learns from its next heartbeat. A finished job answers invalid_state.
 */
export async function jobCancel(exec: Exec, params: { id: number }): Promise<Job> {
  const [job] = await pg(exec.unsafe<Job[]>(
    `update jobs set
        state = case when state = 'running' then state else 'cancelled' end,
        cancel_requested = state = 'running',
        finished_at = case when state = 'running' then null else now() end,
        updated_at = now()
      where id = $1 and state in ('queued', 'retry_waiting', 'running')
     returning ${JOB_COLUMNS}`,
    [params.id] as never[],
  ));
  if (job) return job;
  const current = await jobGet(exec, params);
  throw new DispatchError('invalid_state', `job ${params.id} is ${current.state} and cannot be cancelled`, { details: { state: current.state } });
}

/** Starts a failed or cancelled job again: queued now, attempts counted afresh. */
export async function jobRetry(exec: Exec, params: { id: number }): Promise<Job> {
  const [job] = await pg(exec.unsafe<Job[]>(
    `with r as (
       update jobs set state = 'queued', attempt = 0, run_at = now(), cancel_requested = false,
              finished_at = null, updated_at = now()
        where id = $1 and state in ('failed', 'cancelled')
       returning ${JOB_COLUMNS}
     ), n as (select count(pg_notify('${JOBS_CHANNEL}', queue)) from r)
     select r.* from r cross join n`,
    [params.id] as never[],
  ));
  if (job) return job;
  const current = await jobGet(exec, params);
  throw new DispatchError('invalid_state', `job ${params.id} is ${current.state}; only failed or cancelled jobs can be retried`, { details: { state: current.state } });
}

/**
 * Throws lease_lost unless the job is running under `leaseToken`, forbidden when its queue is
 * outside `queues`; locks the row (share) in a tx.
 */
export async function jobAssertLease(exec: Exec, params: { id: number; leaseToken: string; queues?: QueueScope }): Promise<{ queue: string; attempt: number }> {
  const [row] = await pg(exec<{ queue: string; attempt: number; leaseToken: string | null; state: string }[]>`
    select queue, attempt, lease_token as "leaseToken", state from jobs where id = ${params.id} for share`);
  if (row && !refusedBy(row, params)) return { queue: row.queue, attempt: row.attempt };
  throw refuseUnheld(params.id, row?.queue ?? null, params.queues);
}

function refusedBy(row: { queue: string; leaseToken: string | null; state: string }, params: { leaseToken: string; queues?: QueueScope }): boolean {
  const scope = scopeParam(params.queues);
  return row.state !== 'running' || row.leaseToken?.toLowerCase() !== params.leaseToken.toLowerCase() || (scope !== null && !scope.includes(row.queue));
}
