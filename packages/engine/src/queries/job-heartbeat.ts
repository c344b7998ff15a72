import { leaseLostItem, type LeaseLostItem, type LeaseRef } from '@pgdispatch/core/transport';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';

/** The Transport's HeartbeatReply plus the new expiry (the control plane does not forward it). */
export type HeartbeatOutcome = { id: number; ok: true; cancelRequested: boolean; leaseExpiresAt: Date } | LeaseLostItem;

/**
 * Extends the leases of many running jobs in one statement, fenced by lease token: a stale
 * holder's heartbeat matches no row and comes back `lease_lost`. The reply carries
 * cancel_requested, which is how a worker learns of a cancel. Lease length is the api's setting.
 */
export async function jobHeartbeatMany(exec: Exec, params: { items: LeaseRef[]; leaseMs: number }): Promise<HeartbeatOutcome[]> {
  if (params.items.length === 0) return [];
  const rows = await pg(exec.unsafe<{ id: number; cancelRequested: boolean; leaseExpiresAt: Date }[]>(
    `update jobs j set lease_expires_at = now() + $3 * interval '1 millisecond', updated_at = now()
       from unnest($1::bigint[], $2::uuid[]) as x(id, token)
      where j.id = x.id and j.lease_token = x.token and j.state = 'running'
     returning j.id, j.cancel_requested as "cancelRequested", j.lease_expires_at as "leaseExpiresAt"`,
    [params.items.map((i) => i.id), params.items.map((i) => i.leaseToken), params.leaseMs] as never[],
  ));
  const byId = new Map(rows.map((r) => [r.id, r]));
  return params.items.map((i) => {
    const r = byId.get(i.id);
    return r ? { id: i.id, ok: true, cancelRequested: r.cancelRequested, leaseExpiresAt: r.leaseExpiresAt } : leaseLostItem(i.id);
  });
}

/** Single-job heartbeat; see jobHeartbeatMany. */
export async function jobHeartbeat(exec: Exec, params: LeaseRef & { leaseMs: number }): Promise<HeartbeatOutcome> {
  const [out] = await jobHeartbeatMany(exec, { items: [{ id: params.id, leaseToken: params.leaseToken }], leaseMs: params.leaseMs });
  return out as HeartbeatOutcome;
}
