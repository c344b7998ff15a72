import { leaseLostItem, type LeaseOutcome, type LeaseRef } from '@pgdispatch/core/transport';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';

export interface CompleteItem extends LeaseRef {
  result?: unknown;
}

/**
 * Marks many jobs succeeded in one statement. Fencing: only a row whose lease_token still matches
 * and is running changes; the others are reported `lease_lost` without failing the batch.
 * Results travel as text[] and are cast per row, so one round trip serves the whole batch.
 */
export async function jobCompleteMany(exec: Exec, params: { items: CompleteItem[] }): Promise<LeaseOutcome[]> {
  const { items } = params;
  if (items.length === 0) return [];
  const rows = await pg(exec.unsafe<{ id: number }[]>(
    `update jobs j set state = 'succeeded', result = x.result::jsonb, lease_token = null,
            lease_expires_at = null, finished_at = now(), updated_at = now()
       from unnest($1::bigint[], $2::uuid[], $3::text[]) as x(id, token, result)
      where j.id = x.id and j.lease_token = x.token and j.state = 'running'
     returning j.id`,
    [items.map((i) => i.id), items.map((i) => i.leaseToken), items.map((i) => (i.result === undefined ? null : JSON.stringify(i.result)))] as never[],
  ));
  return fencedOutcomes(items, rows);
}

export function fencedOutcomes(items: readonly { id: number }[], rows: readonly { id: number }[]): LeaseOutcome[] {
  const done = new Set(rows.map((r) => r.id));
  return items.map((i) => (done.has(i.id) ? { id: i.id, ok: true } : leaseLostItem(i.id)));
}

/** Single-job completion; see jobCompleteMany. */
export async function jobComplete(exec: Exec, params: CompleteItem): Promise<LeaseOutcome> {
  const [out] = await jobCompleteMany(exec, { items: [params] });
  return out as LeaseOutcome;
}
