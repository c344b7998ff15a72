import { DispatchError } from '@pgdispatch/core/errors';
import { toStorableJson } from '@pgdispatch/core/storable';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';
import { refuseUnheld, scopeParam, type QueueScope } from './fenced.js';

/** Channel for per-job events (progress); payload `{"id":…,"type":…,"data":…}`. */
export const EVENTS_CHANNEL = 'pgdispatch_events';
/** NOTIFY payloads are capped at 8000 bytes by Postgres; leave room for the envelope. */
export const MAX_EVENT_BYTES = 7_800;

/**
 * Publishes a progress event for a running job, fenced by lease token and scoped to `queues`.
 * Events reach whoever streams the job at that moment (any api pod, through NOTIFY). NOTIFY would
 * carry `\u0000` as escaped text, but data is held to the same rule as every value a job records
 * (storable in jsonb), so it stays valid wherever events are kept.
 */
export async function jobProgress(exec: Exec, params: { id: number; leaseToken: string; data: unknown; queues?: QueueScope }): Promise<void> {
  const checked = toStorableJson(params.data ?? null, 'data');
  if ('bad' in checked) {
    const { field, problem } = checked.bad;
    throw new DispatchError('invalid_request', `progress ${field} ${problem}`, { details: { field, problem } });
  }
  const payload = `{"id":${params.id},"type":"progress","data":${checked.json}}`;
  const bytes = Buffer.byteLength(payload);
  if (bytes > MAX_EVENT_BYTES) {
    throw new DispatchError('payload_too_large', `progress data is ${bytes} bytes, the limit is ${MAX_EVENT_BYTES}`, { details: { bytes, limit: MAX_EVENT_BYTES } });
  }
  const [row] = await pg(exec.unsafe<{ held: number; queue: string | null }[]>(
    `with sent as (
       select pg_notify($4, $5) from jobs
        where id = $1 and lease_token = $2::uuid and state = 'running' and ($3::text[] is null or queue = any($3::text[]))
     )
     select (select count(*) from sent)::int as held, (select queue from jobs where id = $1) as queue`,
    [params.id, params.leaseToken, scopeParam(params.queues), EVENTS_CHANNEL, payload] as never[],
  ));
  if (!row || row.held === 0) throw refuseUnheld(params.id, row?.queue ?? null, params.queues);
}
