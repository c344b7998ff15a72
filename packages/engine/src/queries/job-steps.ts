import { leaseLost } from '@pgdispatch/core/errors';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';

/**
 * Checkpoints a step result for a running job, fenced by lease token (a stale holder's checkpoint
 * writes nothing and gets lease_lost). The first result recorded for a name wins: a retry reads
 * it back instead of running the step again.
 *
 * The holder row is locked `for share`: a concurrent reap, complete or fail that already changed the
 * row makes the re-checked condition false (no insert), and one that comes later waits for us.
 * The result is bound as text and cast in SQL: a string bound straight to a `jsonb` parameter is
 * JSON-encoded again by postgres.js and would be stored as a JSON string.
 */
export async function jobStepSave(exec: Exec, params: { id: number; leaseToken: string; name: string; result: unknown }): Promise<void> {
  const rows = await pg(exec<{ ok: number }[]>`
    with holder as (
      select id, attempt from jobs where id = ${params.id} and lease_token = ${params.leaseToken}::uuid and state = 'running'
       for share
    ), ins as (
      insert into job_steps (job_id, name, result, attempt)
      select id, ${params.name}, ${JSON.stringify(params.result ?? null)}::text::jsonb, attempt from holder
      on conflict (job_id, name) do nothing
    )
    select 1 as ok from holder`);
  if (rows.length === 0) throw leaseLost(params.id);
}

/** Every checkpointed step of a job: name → result. */
export async function jobStepsLoad(exec: Exec, params: { id: number }): Promise<Record<string, unknown>> {
  const rows = await pg(exec<{ name: string; result: unknown }[]>`select name, result from job_steps where job_id = ${params.id}`);
  return Object.fromEntries(rows.map((r) => [r.name, r.result]));
}
