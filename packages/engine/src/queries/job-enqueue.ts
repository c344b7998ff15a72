import { ENQUEUE_LIMITS } from '@pgdispatch/core/enqueue-limits';
import { DispatchError, invalidRequest } from '@pgdispatch/core/errors';
import { assertQueueName, isValidQueueName } from '@pgdispatch/core/queue-name';
import { unstorableJson, unstorableText } from '@pgdispatch/core/storable';
import type { Job } from '@pgdispatch/core/types';
import type { Exec } from '../db.js';
import { inTx } from '../db.js';
import { pg, toDispatchError } from '../pg-errors.js';
import { PREPARED } from './prepared.js';
import { JOB_COLUMNS } from './rows.js';
import { JOBS_CHANNEL } from '../notify.js';

export interface EnqueueItem {
  queue: string;
  task: string;
  payload?: unknown;
  /** Lower runs first (default 0; -32768..32767). */
  priority?: number;
  /** Absolute start time; wins over delayMs. */
  runAt?: Date;
  /** Delay from the database's now(), in ms (default 0). */
  delayMs?: number;
  /** Default: the queue's default_max_attempts, else 5. */
  maxAttempts?: number;
  /** Per queue: a second enqueue with the same key returns the first job. */
  idempotencyKey?: string;
  /**
   * Per queue, unique while active: while a job with this key is queued, retry_waiting or running,
   * an enqueue with the key returns it; once it finished, the key is free again.
   */
  uniqueKey?: string;
  parentId?: number;
}

export interface EnqueueOptions {
  /** Largest accepted serialized payload, in bytes (default 262144). */
  maxPayloadBytes?: number;
}

export interface EnqueueResult {
  job: Job;
  /** false when an idempotency key matched an existing job. */
  created: boolean;
}

const L = ENQUEUE_LIMITS;

// Enqueues are prepared (prepared.ts): one Bind/Execute round trip instead of Parse + Describe first.
const DEFAULT_MAX_PAYLOAD_BYTES = 262_144;

/**
 * Validates one item against the bounds the API schemas use too (core/enqueue-limits.ts): this
 * is the check for callers that come straight to the engine. `index` names the item in a batch's
 * messages (`(item 3)`) and details; returns the serialized payload.
 */
function validateItem(it: EnqueueItem, index: number | undefined, maxPayloadBytes: number): string {
  const at = index === undefined ? '' : ` (item ${index})`;
  const item = index === undefined ? {} : { item: index };
  if (!isValidQueueName(it.queue)) assertQueueName(it.queue);
  if (typeof it.task !== 'string' || it.task.length === 0 || it.task.length > L.taskMax) throw invalidRequest(`task must be 1–${L.taskMax} characters${at}`);
  if (it.priority !== undefined && (!Number.isInteger(it.priority) || it.priority < L.priorityMin || it.priority > L.priorityMax)) {
    throw invalidRequest(`priority must be an integer in ${L.priorityMin}..${L.priorityMax}${at}`);
  }
  if (it.delayMs !== undefined && (!Number.isFinite(it.delayMs) || it.delayMs < 0)) throw invalidRequest(`delayMs must be a non-negative number${at}`);
  if (it.runAt !== undefined && Number.isNaN(it.runAt.getTime())) throw invalidRequest(`runAt is not a valid time${at}`);
  if (it.maxAttempts !== undefined && (!Number.isInteger(it.maxAttempts) || it.maxAttempts < 1 || it.maxAttempts > L.maxAttemptsMax)) {
    throw invalidRequest(`maxAttempts must be an integer in 1..${L.maxAttemptsMax}${at}`);
  }
  if (it.idempotencyKey !== undefined && (it.idempotencyKey.length === 0 || it.idempotencyKey.length > L.idempotencyKeyMax)) {
    throw invalidRequest(`idempotencyKey must be 1–${L.idempotencyKeyMax} characters${at}`);
  }
  if (it.uniqueKey !== undefined && (typeof it.uniqueKey !== 'string' || it.uniqueKey.length === 0 || it.uniqueKey.length > 255)) {
    throw invalidRequest(`uniqueKey must be 1–255 characters${at}`);
  }
  if (it.uniqueKey !== undefined && it.idempotencyKey !== undefined) throw invalidRequest(`give idempotencyKey or uniqueKey, not both${at}`);
  // NUL in text is refused by PostgreSQL (22021) and would fail the whole statement.
  const badText = unstorableText(it.task, 'task') ?? (it.idempotencyKey === undefined ? null : unstorableText(it.idempotencyKey, 'idempotencyKey'))
    ?? (it.uniqueKey === undefined ? null : unstorableText(it.uniqueKey, 'uniqueKey'));
  if (badText) throw invalidRequest(`${badText.field} ${badText.problem}${at}`, { ...badText, ...item });
  let json: string | undefined;
  try {
    json = JSON.stringify(it.payload ?? {});
  } catch (err) {
    // BigInt and circular structures throw TypeError: the caller's input, not our fault.
    throw new DispatchError('invalid_request', `payload must be JSON-serialisable${at}`, { cause: err });
  }
  if (json === undefined) throw invalidRequest(`payload must be JSON${at}`);
  const bytes = Buffer.byteLength(json);
  if (bytes > maxPayloadBytes) {
    throw new DispatchError('payload_too_large', `payload is ${bytes} bytes, the limit is ${maxPayloadBytes}${at}`, { details: { bytes, limit: maxPayloadBytes } });
  }
  const badJson = unstorableJson(json, 'payload');
  if (badJson) throw invalidRequest(`${badJson.field} ${badJson.problem}${at}`, { ...badJson, ...item });
  return json;
}

/**
 * Enqueues many jobs in one INSERT … SELECT FROM unnest(…). One statement also registers unknown
 * queues (defaults) and NOTIFYs each queue with immediately runnable jobs; NOTIFY is delivered on
 * commit and coalesced, so a burst costs one wake-up per queue.
 *
 * Idempotency: `on conflict do nothing` waits for a concurrent inserter of the same key to commit,
 * so the follow-up select (a new snapshot under READ COMMITTED) finds the winner's row.
 */
export async function jobEnqueueMany(exec: Exec, params: { items: EnqueueItem[] } & EnqueueOptions): Promise<EnqueueResult[]> {
  const { items } = params;
  if (items.length === 0) return [];
  if (items.length > 10_000) throw invalidRequest('a batch holds at most 10000 jobs');
  const max = params.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  const payloads = items.map((it, i) => validateItem(it, items.length > 1 ? i : undefined, max));
  return insertValidated<Job>(exec, items, payloads, JOB_COLUMNS);
}

/** What the statement returns for ids only: enough to match rows to items (and to NOTIFY). */
const ID_COLUMNS = `id, queue, run_at as "runAt", idempotency_key as "idempotencyKey", unique_key as "uniqueKey",
  run_at <= created_at as "runnable"`;
type KeyRow = { id: number; queue: string; idempotencyKey: string | null; uniqueKey?: string | null };

export interface EnqueueIdResult {
  id: number;
  created: boolean;
  /** Created and runnable at once (run_at <= created_at, the insert's now()): the statement NOTIFYed for it. */
  runnable: boolean;
}

/**
 * jobEnqueueMany answering ids only (`POST …/jobs/batch?return=ids`): the same statement and
 * rules, returning five narrow columns instead of whole rows. For 1,000 jobs the api then parses
 * no payloads, dates or results back from PostgreSQL (a CPU profile of the bulk route: DataRow
 * parsing 11 % and most of the 26 % spent in GC were those rows).
 */
export async function jobEnqueueManyIds(exec: Exec, params: { items: EnqueueItem[] } & EnqueueOptions): Promise<EnqueueIdResult[]> {
  const { items } = params;
  if (items.length === 0) return [];
  if (items.length > 10_000) throw invalidRequest('a batch holds at most 10000 jobs');
  const max = params.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  const payloads = items.map((it, i) => validateItem(it, items.length > 1 ? i : undefined, max));
  const rows = await insertValidated<KeyRow & { runnable: boolean }>(exec, items, payloads, ID_COLUMNS);
  return rows.map((r) => ({ id: r.job.id, created: r.created, runnable: r.created && r.job.runnable }));
}

/**
 * The one statement (plus the key lookup) for items validateItem accepted; `payloads` are theirs.
 * `columns` is the RETURNING list (JOB_COLUMNS or ID_COLUMNS: both name id, queue, "runAt",
 * "idempotencyKey" and "uniqueKey", which the matching below and the NOTIFY need).
 */
async function insertValidated<R extends KeyRow>(exec: Exec, items: EnqueueItem[], payloads: string[], columns: string): Promise<{ job: R; created: boolean }[]> {
  const cols = {
    queue: items.map((i) => i.queue),
    task: items.map((i) => i.task),
    payload: payloads,
    priority: items.map((i) => i.priority ?? 0),
    runAt: items.map((i) => (i.runAt ? i.runAt.toISOString() : null)),
    delay: items.map((i) => Math.round(i.delayMs ?? 0)),
    maxAttempts: items.map((i) => i.maxAttempts ?? null),
    key: items.map((i) => i.idempotencyKey ?? null),
    parent: items.map((i) => i.parentId ?? null),
    unique: items.map((i) => i.uniqueKey ?? null),
  };
  // Which existing job an item may resolve to: by idempotency key, or by unique-while-active key.
  const dedupeOf = (queue: string, idem: string | null | undefined, unique: string | null | undefined) =>
    idem != null ? `i\u0000${queue}\u0000${idem}` : unique != null ? `u\u0000${queue}\u0000${unique}` : null;
  const run = async (ex: Exec): Promise<{ job: R; created: boolean }[]> => {
    const inserted = await pg(ex.unsafe<R[]>(
      `with input as (
         select * from unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::timestamptz[], $6::bigint[], $7::int[], $8::text[], $9::bigint[], $10::text[])
           with ordinality as t(queue, task, payload, priority, run_at, delay_ms, max_attempts, idempotency_key, parent_id, unique_key, ord)
       ),
       new_queues as (
         insert into queues (name) select distinct queue from input on conflict do nothing
       ),
       ins as (
         insert into jobs (queue, task, payload, priority, run_at, max_attempts, idempotency_key, parent_id, unique_key)
         select i.queue, i.task, i.payload::jsonb, i.priority,
                coalesce(i.run_at, now() + i.delay_ms * interval '1 millisecond'),
                coalesce(i.max_attempts, q.default_max_attempts, 5), i.idempotency_key, i.parent_id, i.unique_key
           from input i left join queues q on q.name = i.queue
          order by i.ord
         -- either unique index: (queue, idempotency_key), or (queue, unique_key) among active jobs
         on conflict do nothing
         returning ${columns}
       ),
       notified as (
         select count(pg_notify('${JOBS_CHANNEL}', queue)) as n
           from (select distinct queue from ins where "runAt" <= now()) w
       )
       select ins.* from ins cross join notified`,
      [cols.queue, cols.task, cols.payload, cols.priority, cols.runAt, cols.delay, cols.maxAttempts, cols.key, cols.parent, cols.unique] as never[],
      PREPARED,
    ));
    // Map results back to input order: inserted rows by their key or by position among keyless.
    const byKey = new Map<string, R>();
    const keyless: R[] = [];
    for (const row of inserted) {
      const d = dedupeOf(row.queue, row.idempotencyKey, row.uniqueKey);
      if (d !== null) byKey.set(d, row);
      else keyless.push(row);
    }
    keyless.sort((a, b) => a.id - b.id);
    const missing = items.filter((i) => {
      const d = dedupeOf(i.queue, i.idempotencyKey, i.uniqueKey);
      return d !== null && !byKey.has(d);
    });
    const existing = new Map<string, R>();
    if (missing.length > 0) {
      const rows = await pg(ex.unsafe<R[]>(
        `select ${columns} from jobs where (queue, idempotency_key) in (
           select k_queue, k_key from unnest($1::text[], $2::text[]) as k(k_queue, k_key) where k_key is not null)
         union all
         select ${columns} from jobs where state in ('queued', 'retry_waiting', 'running') and (queue, unique_key) in (
           select k_queue, k_key from unnest($1::text[], $3::text[]) as k(k_queue, k_key) where k_key is not null)`,
        [missing.map((m) => m.queue), missing.map((m) => m.idempotencyKey ?? null), missing.map((m) => m.uniqueKey ?? null)] as never[],
        PREPARED,
      ));
      for (const r of rows) existing.set(r.uniqueKey != null && r.idempotencyKey == null ? `u\u0000${r.queue}\u0000${r.uniqueKey}` : `i\u0000${r.queue}\u0000${r.idempotencyKey}`, r);
    }
    let k = 0;
    const seen = new Set<string>();
    return items.map((it) => {
      const id = dedupeOf(it.queue, it.idempotencyKey, it.uniqueKey);
      if (id === null) return { job: keyless[k++] as R, created: true };
      const mine = byKey.get(id);
      if (mine && !seen.has(id)) {
        seen.add(id);
        return { job: mine, created: true };
      }
      const job = mine ?? existing.get(id);
      if (!job) throw new DispatchError('conflict', 'the key matched a job that vanished or finished meanwhile; retry', { retryable: true });
      return { job, created: false };
    });
  };
  return items.some((i) => i.idempotencyKey !== undefined || i.uniqueKey !== undefined) ? inTx(exec, run) : run(exec);
}

/** Enqueues one job; see jobEnqueueMany. */
export async function jobEnqueue(exec: Exec, params: EnqueueItem & EnqueueOptions): Promise<EnqueueResult> {
  const { maxPayloadBytes, ...item } = params;
  const [res] = await jobEnqueueMany(exec, { items: [item], ...(maxPayloadBytes === undefined ? {} : { maxPayloadBytes }) });
  return res as EnqueueResult;
}

/** One item's outcome in jobEnqueueEach: its result, or the error that item alone caused. */
export type EnqueueSettled = { ok: true; value: EnqueueResult } | { ok: false; error: DispatchError };

/**
 * Enqueues independent items — concurrent single enqueues grouped into one statement and one
 * commit — answering each for itself, exactly as if each had been enqueued alone:
 *
 * - an item that fails validation gets its own error (messages without an `(item n)`), and the
 *   others go through;
 * - keys resolve as in jobEnqueueMany: two items with one key, the first creates and the second
 *   gets that job (`created: false`), as two sequential enqueues would;
 * - if the grouped statement fails for any reason but an unavailable database (a value PostgreSQL
 *   refuses that validation let through, a key whose job finished meanwhile), every item is
 *   retried alone, so the failure stays with the item that caused it. An unavailable database
 *   fails every item: each alone would have failed the same way.
 */
export async function jobEnqueueEach(exec: Exec, params: { items: EnqueueItem[] } & EnqueueOptions): Promise<EnqueueSettled[]> {
  const { items } = params;
  const max = params.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  const out: EnqueueSettled[] = new Array(items.length);
  const valid: number[] = [];
  const payloads: string[] = [];
  items.forEach((it, i) => {
    try {
      payloads.push(validateItem(it, undefined, max));
      valid.push(i);
    } catch (err) {
      out[i] = { ok: false, error: toDispatchError(err) };
    }
  });
  if (valid.length === 0) return out;
  try {
    const results = await insertValidated<Job>(exec, valid.map((i) => items[i] as EnqueueItem), payloads, JOB_COLUMNS);
    results.forEach((value, k) => (out[valid[k] as number] = { ok: true, value }));
  } catch (err) {
    const error = toDispatchError(err);
    if (valid.length === 1 || error.code === 'unavailable') {
      for (const i of valid) out[i] = { ok: false, error };
      return out;
    }
    // In input order, one at a time: a repeated key then resolves as it would sequentially.
    for (const [k, i] of valid.entries()) {
      try {
        const [value] = await insertValidated<Job>(exec, [items[i] as EnqueueItem], [payloads[k] as string], JOB_COLUMNS);
        out[i] = { ok: true, value: value as EnqueueResult };
      } catch (e) {
        out[i] = { ok: false, error: toDispatchError(e) };
      }
    }
  }
  return out;
}
