import type { LeaseOutcome, LeaseRef } from '@pgdispatch/core/transport';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';
import { PREPARED } from './prepared.js';
import { answerPerItem, fencedCtes, reportWoken, scopeParam, splitRows, wokenCte, type OnWake, type QueueScope } from './fenced.js';

/**
 * Returns running jobs to queued without spending an attempt (attempt - 1): used on graceful
 * shutdown for unstarted or interrupted jobs and when a dequeue requester vanished before
 * delivery. Fenced per item by (id, lease token) and scoped to `queues` like every holder write
 * (fenced.ts), rows locked in id order; NOTIFY wakes other dispatchers at commit, for each queue
 * that got a job back and for each concurrency-limited queue (a slot was freed even when the job
 * ended cancelled); `onWake` is told those queues.
 * A job whose cancel was requested while it ran ends `cancelled` instead: queuing it again would
 * run a job the user already cancelled.
 */
export async function jobReleaseMany(exec: Exec, params: { items: LeaseRef[]; queues?: QueueScope; onWake?: OnWake }): Promise<LeaseOutcome[]> {
  const { items } = params;
  if (items.length === 0) return [];
  const rows = await pg(exec.unsafe<{ kind: string; id: number; token: string | null; woken: string[] | null }[]>(
    `with ${fencedCtes(1, 2, 3)},
     rel as (
       update jobs j set state = case when j.cancel_requested then 'cancelled' else 'queued' end,
              attempt = greatest(j.attempt - 1, 0), lease_token = null, lease_expires_at = null,
              finished_at = case when j.cancel_requested then now() end, updated_at = now()
         from locked l where j.id = l.id
       returning j.id, l.token, j.queue, j.state
     ),
     ${wokenCte('rel', 'queued')}
     select 'ok' as kind, rel.id, rel.token, null::text[] as woken from rel
     union all
     select 'forbidden', id, null, null from forbidden
     union all
     select 'woken', null, null, queues from woken where n > 0`,
    [items.map((i) => i.id), items.map((i) => i.leaseToken), scopeParam(params.queues)] as never[], PREPARED,
  ));
  reportWoken(rows, params.onWake);
  const { ok, forbidden } = splitRows(rows);
  return answerPerItem(items, ok, forbidden, (_r, i) => ({ id: i.id, ok: true as const }), 'share');
}
