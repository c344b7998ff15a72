/**
 * The shared shape of every fenced batch write (heartbeat, complete, fail, release).
 *
 * - Items are matched by (id, lease token), never by id alone, and answered from the (id, token)
 *   pairs the statement returned: a stale item beside the live one for the same job can neither
 *   decide the job's outcome nor be told `ok`.
 * - Repeated (id, token) pairs are collapsed before the statement, so no row is written twice.
 * - Rows are locked in one order (id order, in a materialized CTE) before they are updated, so two
 *   batches over the same rows on different connections wait for each other instead of
 *   deadlocking (each used to lock in `unnest` order: 40P01 under kill runs).
 * - A scope (the credential's queues) is checked in the same statement: an item for a job in
 *   another queue is `forbidden` whatever its token, and changes nothing.
 */
import { DispatchError, leaseLost as leaseLostError } from '@pgdispatch/core/errors';
import { leaseLostItem, type ItemRefusal, type LeaseRef } from '@pgdispatch/core/transport';
import { JOBS_CHANNEL } from '../notify.js';

/** The queues a write may touch: `*` or names (a worker credential's queues). */
export type QueueScope = '*' | readonly string[];

/** `null` binds "any queue"; a list binds itself. */
export function scopeParam(scope: QueueScope | undefined): string[] | null {
  return scope === undefined || scope === '*' ? null : [...scope];
}

/**
 * CTEs `x` (distinct (id, token) pairs from `$ids`, `$tokens`), `forbidden` (ids of jobs outside
 * `$scope`) and `locked` (held rows inside the scope, locked in id order; `extra` adds columns
 * of `jobs j`). Parameters are given by number, e.g. `fencedCtes(1, 2, 3)`.
 *
 * `locked` probes `jobs_pkey` once per item (a LATERAL subquery that locks what it finds), in `x`'s
 * id order, so the lock order stays the id order. It does not say `state = 'running'`: the token
 * match implies it (CHECK: running exactly when a lease token is set), and with it the planner
 * took `jobs_running_idx` whenever the statistics said few jobs run (they were analysed while the
 * backlog was queued), scanning every running job and every dead entry a finished one left there,
 * per statement, or once per item (fenced-plan.pg.test.ts). Its only cost is now the batch's own
 * rows: server CPU per completed job at batches of 16, 93–118 → 62–81 µs (PostgreSQL 15; see
 * docs/benchmarks.md, "What limits" 17), and PostgreSQL's plan cache now keeps a generic plan for it.
 *
 * `carry` brings one more array, parallel to ids and tokens, through `x` into `locked` (column
 * `carry.as`), so the write takes each item's value from its locked row. Joining the array again
 * in the write planned as a nested loop that re-ran the unnest per locked row (the CTE is
 * estimated at one row): a completion of 300 compared 89,700 pairs, 31 of its 38 ms (auto_explain,
 * PostgreSQL 15), and it grew with the batch, i.e. exactly when the api fell behind.
 */
export function fencedCtes(ids: number, tokens: number, scope: number, extra = '', carry?: { param: number; type: string; as: string }): string {
  const x = carry
    ? `select distinct on (id, token) id, token, ${carry.as} from unnest($${ids}::bigint[], $${tokens}::uuid[], $${carry.param}::${carry.type}[]) as x(id, token, ${carry.as}) order by id, token`
    : `select distinct id, token from unnest($${ids}::bigint[], $${tokens}::uuid[]) as x(id, token) order by id, token`;
  return `x as (${x}),
     forbidden as materialized (
       select j.id from jobs j
        where $${scope}::text[] is not null and j.id in (select id from x) and j.queue <> all($${scope}::text[])
     ),
     locked as materialized (
       select j.id, j.lease_token as token${extra}${carry ? `, x.${carry.as}` : ''}
         from x cross join lateral (
           select * from jobs j
            where j.id = x.id and j.lease_token = x.token
              and ($${scope}::text[] is null or j.queue = any($${scope}::text[]))
              for update
         ) j
     )`;
}

/**
 * Observer of a holder write: the queues it notified on the jobs channel (NOTIFY is sent at
 * commit), so the caller can wake its own dispatcher at once instead of waiting for the round
 * trip. Called only when there are some.
 */
export type OnWake = (queues: string[]) => void;

/**
 * CTE `woken`: one row, the distinct queues of `source` (a CTE with a `queue` column — or the one
 * named `queueColumn` — and a `state` column: the rows a write just ended or returned, with the queue
 * each job ran in, which for a failure the dead-letter trigger may have rewritten in `jobs.queue`)
 * that another claim can use now, each notified on the
 * jobs channel. That is a queue with a concurrency limit (the write freed one of its running
 * slots, whatever the row's new state) and, when `runnableState` is given, any queue where a row
 * is now in that state (released → queued). Unlimited queues' completions notify nobody: the
 * common path pays one primary-key probe of `queues` per distinct queue of the batch and no NOTIFY.
 */
export function wokenCte(source: string, runnableState?: string, queueColumn = 'queue'): string {
  const runnable = runnableState === undefined ? 'false' : `bool_or(s.state = '${runnableState}')`;
  return `woken as (
       select coalesce(array_agg(w.queue), '{}') as queues, count(pg_notify('${JOBS_CHANNEL}', w.queue)) as n
         from (select s.${queueColumn} as queue from ${source} s left join queues q on q.name = s.${queueColumn}
                group by s.${queueColumn}, q.concurrency_limit
               having q.concurrency_limit is not null or ${runnable}) w
     )`;
}

/** The queues a `woken` row carried, to the observer (if any and if there are some). */
export function reportWoken(rows: readonly { kind: string; woken?: string[] | null }[], onWake: OnWake | undefined): void {
  if (!onWake) return;
  for (const r of rows) if (r.kind === 'woken' && r.woken && r.woken.length > 0) onWake(r.woken);
}

export const leaseKey = (id: number, token: string) => `${id}:${token.toLowerCase()}`;

export const forbidden = (id: number): ItemRefusal => ({
  id, ok: false, code: 'forbidden', message: `job ${id} is in a queue this credential may not touch`,
});
export const duplicate = (id: number): ItemRefusal => ({
  id, ok: false, code: 'invalid_request', message: `job ${id} appears twice in this batch with the same lease; only the first item was applied`,
});

/**
 * Answers each item for itself: `ok(row)` when the statement returned its (id, token), forbidden
 * when its job is outside the scope, lease_lost otherwise. `repeats` says what a repeated
 * (id, token) pair gets: the first one's answer (`share`: heartbeat, release) or a refusal
 * (`refuse`: complete and fail carry a value, and only the first was written).
 */
export function answerPerItem<R, O>(
  items: readonly LeaseRef[],
  rows: ReadonlyMap<string, R>,
  forbiddenIds: ReadonlySet<number>,
  ok: (row: R, item: LeaseRef) => O,
  repeats: 'share' | 'refuse',
  /** Answers decided before the statement (values that could not be stored), by leaseKey. */
  preset?: ReadonlyMap<string, ItemRefusal>,
): (O | ItemRefusal)[] {
  const seen = new Map<string, O | ItemRefusal>();
  return items.map((item) => {
    const key = leaseKey(item.id, item.leaseToken);
    const first = seen.get(key);
    if (first !== undefined) return repeats === 'share' ? first : duplicate(item.id);
    let out: O | ItemRefusal;
    const decided = preset?.get(key);
    if (decided !== undefined) out = decided;
    else if (forbiddenIds.has(item.id)) out = forbidden(item.id);
    else {
      const row = rows.get(key);
      out = row === undefined ? leaseLostItem(item.id) : ok(row, item);
    }
    seen.set(key, out);
    return out;
  });
}

/** Splits rows of `select 'ok' as kind … union all select 'forbidden' …` into lookups. */
export function splitRows<R extends { kind: string; id: number; token: string | null }>(rows: readonly R[]): { ok: Map<string, R>; forbidden: Set<number> } {
  const ok = new Map<string, R>();
  const forbiddenIds = new Set<number>();
  for (const r of rows) {
    if (r.kind === 'forbidden') forbiddenIds.add(r.id);
    else if (r.token !== null) ok.set(leaseKey(r.id, r.token), r);
  }
  return { ok, forbidden: forbiddenIds };
}

/** First index of each distinct (id, token) pair, in item order. */
export function firstOfEach<T extends LeaseRef>(items: readonly T[]): T[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    const k = leaseKey(i.id, i.leaseToken);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * The error of a single-item holder write that matched no row: `forbidden` when the job's queue
 * (`queue`, null for an unknown job) is outside the scope, `lease_lost` otherwise.
 */
export function refuseUnheld(id: number, queue: string | null, scope: QueueScope | undefined): DispatchError {
  const s = scopeParam(scope);
  if (s !== null && queue !== null && !s.includes(queue)) {
    return new DispatchError('forbidden', `job ${id} is in a queue this credential may not touch`, { details: { id } });
  }
  return leaseLostError(id);
}
