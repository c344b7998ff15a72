import { backoffDelayMs } from '@pgdispatch/core/backoff';
import { leaseLostItem, type LeaseLostItem, type LeaseRef } from '@pgdispatch/core/transport';
import type { JobError, JobState } from '@pgdispatch/core/types';
import type { Exec } from '../db.js';
import { inTx } from '../db.js';
import { pg } from '../pg-errors.js';

export interface FailItem extends LeaseRef {
  error: JobError;
  /** false = never retry (e.g. a payload that fails its schema). Default true. */
  retryable?: boolean;
}

/** The Transport's FailReply plus the retry time (the control plane does not forward it). */
export type FailOutcome = { id: number; ok: true; state: JobState; runAt: Date | null } | LeaseLostItem;

/**
 * Records failures, fenced by lease token. Each job goes to retry_waiting with run_at = now() +
 * backoff(attempt) (the queue's policy, full jitter, computed by core's pure backoff), or to failed
 * when attempts are spent or the error is not retryable, or to cancelled when a cancel was
 * requested while it ran. Two statements in one transaction: lock the fenced rows, then update.
 */
export async function jobFailMany(exec: Exec, params: { items: FailItem[]; random?: () => number }): Promise<FailOutcome[]> {
  const { items } = params;
  if (items.length === 0) return [];
  return inTx(exec, async (tx) => {
    const rows = await pg(tx.unsafe<{ id: number; attempt: number; maxAttempts: number; cancelRequested: boolean; baseMs: number; maxMs: number }[]>(
      `select j.id, j.attempt, j.max_attempts as "maxAttempts", j.cancel_requested as "cancelRequested",
              coalesce(q.backoff_base_ms, 1000) as "baseMs", coalesce(q.backoff_max_ms, 3600000) as "maxMs"
         from jobs j
         join unnest($1::bigint[], $2::uuid[]) as x(id, token) on j.id = x.id and j.lease_token = x.token
         left join queues q on q.name = j.queue
        where j.state = 'running'
        for update of j`,
      [items.map((i) => i.id), items.map((i) => i.leaseToken)] as never[],
    ));
    const byId = new Map(rows.map((r) => [r.id, r]));
    const plan: { id: number; state: JobState; delayMs: number; error: string }[] = [];
    for (const item of items) {
      const r = byId.get(item.id);
      if (!r) continue;
      const retryable = item.retryable !== false;
      const state: JobState = r.cancelRequested ? 'cancelled' : retryable && r.attempt < r.maxAttempts ? 'retry_waiting' : 'failed';
      const delayMs = state === 'retry_waiting' ? backoffDelayMs(r.attempt, { baseMs: r.baseMs, maxMs: r.maxMs }, params.random) : 0;
      plan.push({ id: item.id, state, delayMs, error: JSON.stringify({ ...item.error, retryable, attempt: r.attempt }) });
    }
    const updated = plan.length === 0 ? [] : await pg(tx.unsafe<{ id: number; state: JobState; runAt: Date }[]>(
      `update jobs j set state = x.state, last_error = x.error::jsonb, lease_token = null, lease_expires_at = null,
              run_at = case when x.state = 'retry_waiting' then now() + x.delay_ms * interval '1 millisecond' else j.run_at end,
              finished_at = case when x.state = 'retry_waiting' then null else now() end, updated_at = now()
         from unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[]) as x(id, state, delay_ms, error)
        where j.id = x.id
       returning j.id, j.state, j.run_at as "runAt"`,
      [plan.map((p) => p.id), plan.map((p) => p.state), plan.map((p) => p.delayMs), plan.map((p) => p.error)] as never[],
    ));
    const out = new Map(updated.map((u) => [u.id, u]));
    return items.map((i): FailOutcome => {
      const u = out.get(i.id);
      return u ? { id: i.id, ok: true, state: u.state, runAt: u.state === 'retry_waiting' ? u.runAt : null } : leaseLostItem(i.id);
    });
  });
}

/** Single-job failure; see jobFailMany. */
export async function jobFail(exec: Exec, params: FailItem & { random?: () => number }): Promise<FailOutcome> {
  const { random, ...item } = params;
  const [out] = await jobFailMany(exec, { items: [item], ...(random ? { random } : {}) });
  return out as FailOutcome;
}
