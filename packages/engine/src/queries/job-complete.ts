import { toStorableJson, unstorableError } from '@pgdispatch/core/storable';
import type { ItemRefusal, LeaseOutcome, LeaseRef } from '@pgdispatch/core/transport';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';
import { PREPARED } from './prepared.js';
import { answerPerItem, fencedCtes, firstOfEach, leaseKey, reportWoken, scopeParam, splitRows, wokenCte, type OnWake, type QueueScope } from './fenced.js';
import { jobFailMany, type FailItem } from './job-fail.js';

export interface CompleteItem extends LeaseRef {
  result?: unknown;
}

/**
 * Marks many jobs succeeded in one statement, fenced per item by (id, lease token) and scoped to
 * `queues` (fenced.ts): only a row whose lease_token still matches and is running changes; the
 * others are answered `lease_lost` / `forbidden` without failing the batch. Results travel as
 * text[] and are cast per row, so one round trip serves the whole batch.
 *
 * A result PostgreSQL cannot store (NUL, lone surrogate, too deep) or larger than
 * `maxResultBytes` never reaches the statement (it would fail the whole batch): its job is ended
 * `failed`, non-retryable, with an error naming the field (a second statement, only then), and the
 * item is answered `invalid_request` / `payload_too_large` with `details.state`.
 *
 * A completion in a queue with a concurrency limit frees one of its running slots: the statement
 * notifies that queue on the jobs channel (`wokenCte`), so the dispatcher serving it claims the
 * next job at once instead of on its poll, and tells `onWake` which queues it notified.
 */
export async function jobCompleteMany(exec: Exec, params: { items: CompleteItem[]; queues?: QueueScope; maxResultBytes?: number; onWake?: OnWake }): Promise<LeaseOutcome[]> {
  const { items } = params;
  if (items.length === 0) return [];
  const good: { item: CompleteItem; json: string }[] = [];
  const bad: FailItem[] = [];
  for (const item of firstOfEach(items)) {
    const checked = toStorableJson(item.result, 'result', params.maxResultBytes);
    if ('json' in checked) good.push({ item, json: checked.json });
    else bad.push({ id: item.id, leaseToken: item.leaseToken, error: unstorableError('result', checked.bad), retryable: false, unstorable: checked.bad });
  }
  const rows = good.length === 0 ? [] : await pg(exec.unsafe<{ kind: string; id: number; token: string | null; woken: string[] | null }[]>(
    `with ${fencedCtes(1, 2, 4, '', { param: 3, type: 'text', as: 'result' })},
     done as (
       update jobs j set state = 'succeeded', result = l.result::jsonb, lease_token = null,
              lease_expires_at = null, finished_at = now(), updated_at = now()
         from locked l
        where j.id = l.id
       returning j.id, l.token, j.queue, j.state
     ),
     ${wokenCte('done')}
     select 'ok' as kind, id, token, null::text[] as woken from done
     union all
     select 'forbidden', id, null, null from forbidden
     union all
     select 'woken', null, null, queues from woken where n > 0`,
    [good.map((g) => g.item.id), good.map((g) => g.item.leaseToken), good.map((g) => g.json), scopeParam(params.queues)] as never[], PREPARED,
  ));
  reportWoken(rows, params.onWake);
  const { ok, forbidden } = splitRows(rows);
  const preset = new Map<string, ItemRefusal>();
  if (bad.length > 0) {
    const failed = await jobFailMany(exec, { items: bad, ...(params.queues ? { queues: params.queues } : {}), ...(params.onWake ? { onWake: params.onWake } : {}) });
    bad.forEach((b, i) => {
      const f = failed[i] as (typeof failed)[number];
      // ok cannot happen for an unstorable item (it is answered with its refusal); keep the type honest.
      preset.set(leaseKey(b.id, b.leaseToken), f.ok ? { id: b.id, ok: false, code: 'invalid_request' } : f);
    });
  }
  return answerPerItem(items, ok, forbidden, (_r, i) => ({ id: i.id, ok: true as const }), 'refuse', preset);
}

/** Single-job completion; see jobCompleteMany. */
export async function jobComplete(exec: Exec, params: CompleteItem & { queues?: QueueScope; maxResultBytes?: number }): Promise<LeaseOutcome> {
  const { queues, maxResultBytes, ...item } = params;
  const [out] = await jobCompleteMany(exec, { items: [item], ...(queues ? { queues } : {}), ...(maxResultBytes !== undefined ? { maxResultBytes } : {}) });
  return out as LeaseOutcome;
}
