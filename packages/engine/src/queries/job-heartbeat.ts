import type { ItemRefusal, LeaseRef } from '@pgdispatch/core/transport';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';
import { PREPARED } from './prepared.js';
import { answerPerItem, fencedCtes, scopeParam, splitRows, type QueueScope } from './fenced.js';

/** The Transport's HeartbeatReply plus the new expiry (the control plane does not forward it). */
export type HeartbeatOutcome = { id: number; ok: true; cancelRequested: boolean; leaseExpiresAt: Date } | ItemRefusal;

/**
 * Extends the leases of many running jobs in one statement, fenced by (id, lease token) per item
 * (fenced.ts): a stale holder's heartbeat matches no row and comes back `lease_lost`, a job outside
 * `queues` is `forbidden`. Rows are locked in id order. The reply carries cancel_requested, which
 * is how a worker learns of a cancel. Lease length is the api's setting.
 */
export async function jobHeartbeatMany(exec: Exec, params: { items: LeaseRef[]; leaseMs: number; queues?: QueueScope }): Promise<HeartbeatOutcome[]> {
  if (params.items.length === 0) return [];
  const rows = await pg(exec.unsafe<{ kind: string; id: number; token: string | null; cancelRequested: boolean; leaseExpiresAt: Date }[]>(
    `with ${fencedCtes(1, 2, 4)},
     upd as (
       update jobs j set lease_expires_at = now() + $3 * interval '1 millisecond', updated_at = now()
         from locked l where j.id = l.id
       returning j.id, l.token, j.cancel_requested, j.lease_expires_at
     )
     select 'ok' as kind, id, token, cancel_requested as "cancelRequested", lease_expires_at as "leaseExpiresAt" from upd
     union all
     select 'forbidden', id, null, null, null from forbidden`,
    [params.items.map((i) => i.id), params.items.map((i) => i.leaseToken), params.leaseMs, scopeParam(params.queues)] as never[], PREPARED,
  ));
  const { ok, forbidden } = splitRows(rows);
  return answerPerItem(params.items, ok, forbidden, (r, i) => ({ id: i.id, ok: true as const, cancelRequested: r.cancelRequested, leaseExpiresAt: r.leaseExpiresAt }), 'share');
}

/** Single-job heartbeat; see jobHeartbeatMany. */
export async function jobHeartbeat(exec: Exec, params: LeaseRef & { leaseMs: number; queues?: QueueScope }): Promise<HeartbeatOutcome> {
  const [out] = await jobHeartbeatMany(exec, { items: [{ id: params.id, leaseToken: params.leaseToken }], leaseMs: params.leaseMs, ...(params.queues ? { queues: params.queues } : {}) });
  return out as HeartbeatOutcome;
}
