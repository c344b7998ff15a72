import type { LeaseOutcome, LeaseRef } from '@pgdispatch/core/transport';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';
import { fencedOutcomes } from './job-complete.js';

/**
 * Returns running jobs to queued without spending an attempt (attempt - 1): used on graceful
 * shutdown for unstarted or interrupted jobs and when a dequeue requester vanished before
 * delivery. Fenced like every holder write; NOTIFY wakes other dispatchers at commit.
 * A job whose cancel was requested while it ran ends `cancelled` instead: queuing it again would
 * run a job the user already cancelled.
 */
export async function jobReleaseMany(exec: Exec, params: { items: LeaseRef[] }): Promise<LeaseOutcome[]> {
  const { items } = params;
  if (items.length === 0) return [];
  const rows = await pg(exec.unsafe<{ id: number }[]>(
    `with rel as (
       update jobs j set state = case when j.cancel_requested then 'cancelled' else 'queued' end,
              attempt = greatest(j.attempt - 1, 0), lease_token = null, lease_expires_at = null,
              finished_at = case when j.cancel_requested then now() end, updated_at = now()
         from unnest($1::bigint[], $2::uuid[]) as x(id, token)
        where j.id = x.id and j.lease_token = x.token and j.state = 'running'
       returning j.id, j.queue, j.state
     ),
     notified as (select count(pg_notify('pgdispatch_jobs', queue)) as n from (select distinct queue from rel where state = 'queued') q)
     select rel.id from rel cross join notified`,
    [items.map((i) => i.id), items.map((i) => i.leaseToken)] as never[],
  ));
  return fencedOutcomes(items, rows);
}
