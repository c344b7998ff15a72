import { DispatchError } from '@pgdispatch/core/errors';
import { toStorableJson, unstorableText } from '@pgdispatch/core/storable';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';
import { refuseUnheld, scopeParam, type QueueScope } from './fenced.js';

/**
 * Checkpoints a step result for a running job, fenced by lease token (a stale holder's checkpoint
 * writes nothing and gets lease_lost) and scoped to `queues` (forbidden otherwise). The first
 * result recorded for a name wins: a retry reads it back instead of running the step again.
 *
 * The holder row is locked `for share`: a concurrent reap, complete or fail that already changed the
 * row makes the re-checked condition false (no insert), and one that comes later waits for us.
 * The result is bound as text and cast in SQL: a string bound straight to a `jsonb` parameter is
 * JSON-encoded again by postgres.js and would be stored as a JSON string. A name or result
 * PostgreSQL cannot store is refused (`invalid_request` naming the field) before the statement.
 */
export async function jobStepSave(exec: Exec, params: { id: number; leaseToken: string; name: string; result: unknown; queues?: QueueScope }): Promise<void> {
  const badName = unstorableText(params.name, 'name');
  if (badName) throw new DispatchError('invalid_request', `step ${badName.field} ${badName.problem}`, { details: badName });
  const checked = toStorableJson(params.result ?? null, 'result');
  if ('bad' in checked) {
    const { code, field, problem } = checked.bad;
    throw new DispatchError(code, `step ${field} ${problem}`, { details: { field, problem } });
  }
  const [row] = await pg(exec.unsafe<{ held: number; queue: string | null }[]>(
    `with holder as (
       select id, attempt from jobs
        where id = $1 and lease_token = $2::uuid and state = 'running' and ($5::text[] is null or queue = any($5::text[]))
          for share
     ), ins as (
       insert into job_steps (job_id, name, result, attempt)
       select id, $3, $4::text::jsonb, attempt from holder
       on conflict (job_id, name) do nothing
     )
     select (select count(*) from holder)::int as held, (select queue from jobs where id = $1) as queue`,
    [params.id, params.leaseToken, params.name, checked.json, scopeParam(params.queues)] as never[],
  ));
  if (!row || row.held === 0) throw refuseUnheld(params.id, row?.queue ?? null, params.queues);
}

/** Every checkpointed step of a job: name → result. */
export async function jobStepsLoad(exec: Exec, params: { id: number }): Promise<Record<string, unknown>> {
  const rows = await pg(exec<{ name: string; result: unknown }[]>`select name, result from job_steps where job_id = ${params.id}`);
  return Object.fromEntries(rows.map((r) => [r.name, r.result]));
}

/** A job's checkpointed steps with the attempt that recorded each, oldest first (read API). */
export async function jobStepsList(exec: Exec, params: { id: number }): Promise<{ name: string; result: unknown; attempt: number; createdAt: Date }[]> {
  return pg(exec<{ name: string; result: unknown; attempt: number; createdAt: Date }[]>`
    select name, result, attempt, created_at as "createdAt" from job_steps where job_id = ${params.id} order by created_at, name`);
}
