import type { LeaseOutcome, LeaseRef } from '@pgdispatch/core/transport';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';
import { answerPerItem, fencedCtes, scopeParam, splitRows, type QueueScope } from './fenced.js';
import { JOBS_CHANNEL } from '../notify.js';

/**
 * Returns running jobs to queued without spending an attempt (attempt - 1): used on graceful
 * shutdown for unstarted or interrupted jobs and when a dequeue requester vanished before
 * delivery. Fenced per item by (id, lease token) and scoped to `queues` like every holder write
 * (fenced.ts), rows locked in id order; NOTIFY wakes other dispatchers at commit.
 * A job whose cancel was requested while it ran ends `cancelled` instead: queuing it again would
 * run a job the user already cancelled.
 */
export async function jobReleaseMany(exec: Exec, params: { items: LeaseRef[]; queues?: QueueScope }): Promise<LeaseOutcome[]> {
  const { items } = params;
  if (items.length === 0) return [];
  const rows = await pg(exec.unsafe<{ kind: string; id: number; token: string | null }[]>(
    `with ${fencedCtes(1, 2, 3)},
     rel as (
       update jobs j set state = case when j.cancel_requested then 'cancelled' else 'queued' end,
              attempt = greatest(j.attempt - 1, 0), lease_token = null, lease_expires_at = null,
              finished_at = case when j.cancel_requested then now() end, updated_at = now()
         from locked l where j.id = l.id
       returning j.id, l.token, j.queue, j.state
     ),
     notified as (select count(pg_notify('${JOBS_CHANNEL}', queue)) as n from (select distinct queue from rel where state = 'queued') q)
     select 'ok' as kind, rel.id, rel.token from rel cross join notified
     union all
     select 'forbidden', id, null from forbidden`,
    [items.map((i) => i.id), items.map((i) => i.leaseToken), scopeParam(params.queues)] as never[],
  ));
  const { ok, forbidden } = splitRows(rows);
  return answerPerItem(items, ok, forbidden, (_r, i) => ({ id: i.id, ok: true as const }), 'share');
}
