import { backoffDelayMs } from '@pgdispatch/core/backoff';
import { toStorableJson, unstorableError, type Unstorable } from '@pgdispatch/core/storable';
import type { ItemRefusal, LeaseRef } from '@pgdispatch/core/transport';
import type { JobError, JobState } from '@pgdispatch/core/types';
import type { Exec } from '../db.js';
import { inTx } from '../db.js';
import { pg } from '../pg-errors.js';
import { PREPARED } from './prepared.js';
import { answerPerItem, fencedCtes, firstOfEach, leaseKey, reportWoken, scopeParam, splitRows, wokenCte, type OnWake, type QueueScope } from './fenced.js';

export interface FailItem extends LeaseRef {
  error: JobError;
  /** false = never retry (e.g. a payload that fails its schema). Default true. */
  retryable?: boolean;
  /**
   * Set when this failure stands in for a value that could not be stored (jobCompleteMany's bad
   * result, or this item's own error): the item is answered with this refusal plus the state the
   * job was recorded in, instead of ok.
   */
  unstorable?: Unstorable & { code: 'invalid_request' | 'payload_too_large' };
}

/** The Transport's FailReply plus the retry time (the control plane does not forward it). */
export type FailOutcome = { id: number; ok: true; state: JobState; runAt: Date | null } | ItemRefusal;

/**
 * Records failures, fenced per item by (id, lease token) and scoped to `queues` (fenced.ts). Each
 * job goes to retry_waiting with run_at = now() + backoff(attempt) (the queue's policy, full
 * jitter, computed by core's pure backoff), or to failed when attempts are spent or the error is
 * not retryable, or to cancelled when a cancel was requested while it ran. Two statements in one
 * transaction: lock the fenced rows in id order and read their attempts, then update by (id, token).
 *
 * An error PostgreSQL cannot store (NUL, lone surrogates, too deep) is replaced before the
 * statement by one naming the field, the failure becomes non-retryable, and the item is answered
 * `invalid_request` with the state recorded: the other items go through.
 *
 * Any failure in a queue with a concurrency limit frees a running slot (a retry waits for its
 * backoff, but the queue's other jobs need not): the update notifies that queue (`wokenCte`) and
 * tells `onWake`, like jobCompleteMany.
 */
export async function jobFailMany(exec: Exec, params: { items: FailItem[]; queues?: QueueScope; random?: () => number; onWake?: OnWake }): Promise<FailOutcome[]> {
  const { items } = params;
  if (items.length === 0) return [];
  const firsts = firstOfEach(items).map((item): FailItem => {
    const checked = toStorableJson(item.error, 'error');
    if ('json' in checked) return item;
    return { id: item.id, leaseToken: item.leaseToken, error: unstorableError('error', checked.bad), retryable: false, unstorable: checked.bad };
  });
  return inTx(exec, async (tx) => {
    const rows = await pg(tx.unsafe<{ kind: string; id: number; token: string | null; queue: string; attempt: number; maxAttempts: number; cancelRequested: boolean; baseMs: number; maxMs: number }[]>(
      `with ${fencedCtes(1, 2, 3, ', j.queue, j.attempt, j.max_attempts, j.cancel_requested')}
       select 'ok' as kind, l.id, l.token, l.queue, l.attempt, l.max_attempts as "maxAttempts", l.cancel_requested as "cancelRequested",
              coalesce(q.backoff_base_ms, 1000) as "baseMs", coalesce(q.backoff_max_ms, 3600000) as "maxMs"
         from locked l left join queues q on q.name = l.queue
       union all
       select 'forbidden', id, null, null, null, null, null, null, null from forbidden`,
      [firsts.map((i) => i.id), firsts.map((i) => i.leaseToken), scopeParam(params.queues)] as never[], PREPARED,
    ));
    const { ok: held, forbidden } = splitRows(rows);
    const plan: { id: number; token: string; queue: string; state: JobState; delayMs: number; error: string }[] = [];
    for (const item of firsts) {
      const r = held.get(leaseKey(item.id, item.leaseToken));
      if (!r || forbidden.has(item.id)) continue;
      const retryable = item.retryable !== false;
      const state: JobState = r.cancelRequested ? 'cancelled' : retryable && r.attempt < r.maxAttempts ? 'retry_waiting' : 'failed';
      const delayMs = state === 'retry_waiting' ? backoffDelayMs(r.attempt, { baseMs: r.baseMs, maxMs: r.maxMs }, params.random) : 0;
      plan.push({ id: item.id, token: item.leaseToken, queue: r.queue, state, delayMs, error: JSON.stringify({ ...item.error, retryable, attempt: r.attempt }) });
    }
    const updated = plan.length === 0 ? [] : await pg(tx.unsafe<{ kind: string; id: number; token: string | null; state: JobState; runAt: Date; woken: string[] | null }[]>(
      `with ended as (
         update jobs j set state = x.state, last_error = x.error::jsonb, lease_token = null, lease_expires_at = null,
                run_at = case when x.state = 'retry_waiting' then now() + x.delay_ms * interval '1 millisecond' else j.run_at end,
                finished_at = case when x.state = 'retry_waiting' then null else now() end, updated_at = now()
           from unnest($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::text[]) as x(id, token, state, delay_ms, error, queue)
          -- the token implies running (fenced.ts: no state here, or the planner may scan jobs_running_idx)
          where j.id = x.id and j.lease_token = x.token
         returning j.id, x.token, j.state, j.run_at, x.queue
       ),
       ${wokenCte('ended')}
       select 'ok' as kind, id, token, state, run_at as "runAt", null::text[] as woken from ended
       union all
       select 'woken', null, null, null, null, queues from woken where n > 0`,
      [plan.map((p) => p.id), plan.map((p) => p.token), plan.map((p) => p.state), plan.map((p) => p.delayMs), plan.map((p) => p.error), plan.map((p) => p.queue)] as never[], PREPARED,
    ));
    reportWoken(updated, params.onWake);
    const done = splitRows(updated).ok;
    // Items whose value could not be stored are answered with their refusal once the stand-in
    // failure was recorded (fenced like any other: a stale one is just lease_lost).
    const preset = new Map<string, ItemRefusal>();
    for (const item of firsts) {
      const key = leaseKey(item.id, item.leaseToken);
      const u = done.get(key);
      if (!item.unstorable || !u) continue;
      const { code, field, problem } = item.unstorable;
      preset.set(key, { id: item.id, ok: false, code, message: `${field} ${problem}; the job was recorded ${u.state}`, details: { field, problem, state: u.state } });
    }
    return answerPerItem(items, done, forbidden, (u, i) => ({ id: i.id, ok: true as const, state: u.state, runAt: u.state === 'retry_waiting' ? u.runAt : null }), 'refuse', preset);
  });
}

/** Single-job failure; see jobFailMany. */
export async function jobFail(exec: Exec, params: FailItem & { random?: () => number; queues?: QueueScope }): Promise<FailOutcome> {
  const { random, queues, ...item } = params;
  const [out] = await jobFailMany(exec, { items: [item], ...(random ? { random } : {}), ...(queues ? { queues } : {}) });
  return out as FailOutcome;
}
