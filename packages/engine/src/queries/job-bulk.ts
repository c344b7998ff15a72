import { invalidRequest } from '@pgdispatch/core/errors';
import { assertQueueName, isValidQueueName } from '@pgdispatch/core/queue-name';
import { JOB_STATES, type JobState } from '@pgdispatch/core/types';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';

export interface BulkFilter {
  queue?: string;
  state?: JobState;
  task?: string;
  /** Only jobs created before / after these times. */
  createdBefore?: Date;
  createdAfter?: Date;
  /** Most jobs this batch touches (default 1000, at most 10000); call again while it returns limit. */
  limit?: number;
}

export type BulkOperation = 'retry' | 'cancel' | 'delete';

/** The states each operation applies to; a `state` filter outside them is invalid_request. */
export const BULK_STATES: Record<BulkOperation, readonly JobState[]> = {
  retry: ['failed', 'cancelled'],
  cancel: ['queued', 'retry_waiting', 'running'],
  // A running job is left to its holder: deleting it would turn the holder's writes into lease_lost.
  delete: ['queued', 'retry_waiting', 'succeeded', 'failed', 'cancelled'],
};

/** A retried or redriven job must not collide with an active job holding its unique key. */
const NO_UNIQUE_CLASH = (queueExpr: string) => `(j.unique_key is null or not exists (
            select 1 from jobs o where o.queue = ${queueExpr} and o.unique_key = j.unique_key
               and o.state in ('queued', 'retry_waiting', 'running') and o.id <> j.id))`;

const CHANGE: Record<BulkOperation, string> = {
  retry: `update jobs j set state = 'queued', attempt = 0, run_at = now(), cancel_requested = false, finished_at = null, updated_at = now()
            from picked where j.id = picked.id returning j.queue, j.state`,
  cancel: `update jobs j set state = case when j.state = 'running' then j.state else 'cancelled' end,
                 cancel_requested = j.state = 'running',
                 finished_at = case when j.state = 'running' then null else now() end, updated_at = now()
            from picked where j.id = picked.id returning j.queue, j.state`,
  delete: `delete from jobs j using picked where j.id = picked.id returning j.id, j.queue, j.state`,
};

/** Statements that run beside CHANGE[op]: a deleted job's steps go with it (job_steps has no foreign key, migrations/0011). */
const ALSO: Partial<Record<BulkOperation, string>> = {
  delete: `, steps as (delete from job_steps s using changed where s.job_id = changed.id)`,
};

/**
 * Retries, cancels or deletes the jobs matching `filter`, up to `limit`, in ONE statement: the
 * matching rows are picked in id order with `for update skip locked` (a row a worker is writing
 * right now is left for the next batch), changed, and counted. Retry starts jobs again like
 * POST /v1/jobs/:id/retry and NOTIFYs their queues; cancel ends waiting jobs and requests the
 * cancel of running ones (not already requested); delete removes jobs with their steps (never a
 * running one). Returns how many jobs changed.
 */
export async function jobBulk(exec: Exec, params: { op: BulkOperation } & BulkFilter): Promise<{ count: number }> {
  const { op } = params;
  const allowed = BULK_STATES[op];
  if (!allowed) throw invalidRequest(`unknown bulk operation ${String(op)}`);
  if (params.queue !== undefined && !isValidQueueName(params.queue)) throw invalidRequest('invalid queue name');
  if (params.state !== undefined && !JOB_STATES.includes(params.state)) throw invalidRequest(`unknown state ${params.state}`);
  if (params.state !== undefined && !allowed.includes(params.state)) {
    throw invalidRequest(`${op} applies to ${allowed.join(', ')} jobs, not ${params.state}`, { state: params.state, allowed });
  }
  if (params.task !== undefined && (typeof params.task !== 'string' || params.task.length === 0 || params.task.length > 128)) throw invalidRequest('task must be 1–128 characters');
  for (const k of ['createdBefore', 'createdAfter'] as const) {
    if (params[k] !== undefined && Number.isNaN(params[k]!.getTime())) throw invalidRequest(`${k} is not a valid time`);
  }
  if ([params.queue, params.state, params.task, params.createdBefore, params.createdAfter].every((v) => v === undefined)) {
    throw invalidRequest('give at least one filter (queue, state, task, createdBefore, createdAfter)');
  }
  const limit = params.limit ?? 1000;
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw invalidRequest('limit must be an integer in 1..10000');
  const states = params.state !== undefined ? [params.state] : [...allowed];
  const extra = op === 'retry' ? `and ${NO_UNIQUE_CLASH('j.queue')}` : op === 'cancel' ? `and not (j.state = 'running' and j.cancel_requested)` : '';
  const [row] = await pg(exec.unsafe<{ count: number }[]>(
    `with picked as (
       select j.id from jobs j
        where j.state = any($1::text[]) and ($2::text is null or j.queue = $2) and ($3::text is null or j.task = $3)
          and ($4::timestamptz is null or j.created_at < $4) and ($5::timestamptz is null or j.created_at > $5) ${extra}
        order by j.id limit $6
          for update skip locked
     ), changed as (${CHANGE[op]})${ALSO[op] ?? ''},
     notified as (select count(pg_notify('pgdispatch_jobs', q.queue)) as n from (select distinct queue from changed where state = 'queued') q)
     select count(*)::int as count from changed cross join notified`,
    [states, params.queue ?? null, params.task ?? null, params.createdBefore?.toISOString() ?? null, params.createdAfter?.toISOString() ?? null, limit] as never[],
  ));
  return { count: row?.count ?? 0 };
}

/**
 * Sends dead-lettered jobs of queue `name` back to the queue each came from, queued now with a
 * fresh set of attempts (their events, steps and last error stay with them), up to `limit` per
 * call, in one statement. A job whose unique key is held by an active job there is skipped.
 */
export async function queueRedrive(exec: Exec, params: { name: string; limit?: number }): Promise<{ count: number }> {
  assertQueueName(params.name);
  const limit = params.limit ?? 1000;
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw invalidRequest('limit must be an integer in 1..10000');
  const [row] = await pg(exec.unsafe<{ count: number }[]>(
    `with picked as (
       select j.id from jobs j
        where j.queue = $1 and j.dead_letter_from is not null and j.state = 'failed' and ${NO_UNIQUE_CLASH('j.dead_letter_from')}
        order by j.id limit $2
          for update skip locked
     ), moved as (
       update jobs j set queue = j.dead_letter_from, dead_letter_from = null, state = 'queued', attempt = 0, run_at = now(),
              cancel_requested = false, finished_at = null, updated_at = now()
         from picked where j.id = picked.id
       returning j.queue
     ),
     notified as (select count(pg_notify('pgdispatch_jobs', q.queue)) as n from (select distinct queue from moved) q)
     select count(*)::int as count from moved cross join notified`,
    [params.name, limit] as never[],
  ));
  return { count: row?.count ?? 0 };
}

/** Dead-lettered jobs waiting for a redrive, by the queue they sit in; feeds /metrics. */
export async function deadLetterDepths(exec: Exec): Promise<{ queue: string; n: number }[]> {
  return pg(exec<{ queue: string; n: number }[]>`
    select queue, count(*)::int as n from jobs where dead_letter_from is not null and state = 'failed' group by queue`);
}
