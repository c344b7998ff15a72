import { DispatchError, leaseLost } from '@pgdispatch/core/errors';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';

/** Channel for per-job events (progress); payload `{"id":…,"type":…,"data":…}`. */
export const EVENTS_CHANNEL = 'pgdispatch_events';
/** NOTIFY payloads are capped at 8000 bytes by Postgres; leave room for the envelope. */
export const MAX_EVENT_BYTES = 7_800;

/**
 * Publishes a progress event for a running job, fenced by lease token. Events are not stored:
 * they reach whoever streams the job at that moment (any api pod, through NOTIFY).
 */
export async function jobProgress(exec: Exec, params: { id: number; leaseToken: string; data: unknown }): Promise<void> {
  let payload: string;
  try {
    payload = JSON.stringify({ id: params.id, type: 'progress', data: params.data ?? null });
  } catch (err) {
    // BigInt and circular structures throw TypeError: bad input, not a server fault.
    throw new DispatchError('invalid_request', 'progress data must be JSON-serialisable', { cause: err });
  }
  const bytes = Buffer.byteLength(payload);
  if (bytes > MAX_EVENT_BYTES) {
    throw new DispatchError('payload_too_large', `progress data is ${bytes} bytes, the limit is ${MAX_EVENT_BYTES}`, { details: { bytes, limit: MAX_EVENT_BYTES } });
  }
  const rows = await pg(exec<{ ok: number }[]>`
    select 1 as ok, pg_notify(${EVENTS_CHANNEL}, ${payload}) from jobs
     where id = ${params.id} and lease_token = ${params.leaseToken}::uuid and state = 'running'`);
  if (rows.length === 0) throw leaseLost(params.id);
}
