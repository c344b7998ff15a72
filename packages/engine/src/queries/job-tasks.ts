import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';

/**
 * The distinct tasks of waiting jobs (queued or retry_waiting, due or not), for /readyz and
 * /metrics ("tasks no worker knows"). A loose index scan of jobs_task_claim_idx: one index probe
 * per distinct task (`task > previous … limit 1`), so the cost grows with the number of tasks,
 * not with the backlog — `select distinct task` would read every waiting row.
 */
export async function jobTasksWaiting(exec: Exec): Promise<string[]> {
  const rows = await pg(exec<{ task: string }[]>`
    with recursive t(task) as (
      (select task from jobs where state in ('queued', 'retry_waiting') order by task limit 1)
      union all
      select (select j.task from jobs j
               where j.state in ('queued', 'retry_waiting') and j.task > t.task
               order by j.task limit 1)
        from t where t.task is not null
    )
    select task from t where task is not null`);
  return rows.map((r) => r.task);
}
