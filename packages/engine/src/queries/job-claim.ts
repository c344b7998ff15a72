import type { ClaimedJob } from '@pgdispatch/core/types';
import type postgres from 'postgres';
import type { Exec, Sql } from '../db.js';
import { inTx } from '../db.js';
import { pg, toDispatchError } from '../pg-errors.js';
import { PREPARED } from './prepared.js';
import { CLAIM_ALL_EXCEPT_SQL, CLAIM_ALL_SQL, CLAIM_LISTED_SQL, CLAIM_LISTED_TASKS_SQL, CLAIM_LISTED_GATED_SQL, CLAIM_LISTED_TASKS_GATED_SQL, CLAIM_QUEUE_SQL, CLAIM_QUEUE_TASKS_SQL, CLAIM_RATED_SQL, CLAIM_RATED_TASKS_SQL, CLAIM_TASKS_EXCEPT_SQL, CLAIM_TASKS_GATED_SQL, CLAIM_TASKS_SQL } from './claim-sql.js';

export * from './claim-sql.js';

export interface ClaimParams {
  /** Queues to claim from: `*` for all, or a list of names. */
  queues: '*' | readonly string[];
  /**
   * Tasks the requester can run: `*` (default) for any, or a list of names. Jobs of other tasks
   * are left queued for a worker that knows them (task routing across a rolling deploy).
   */
  tasks?: '*' | readonly string[];
  /** Most jobs to claim (the outstanding demand of the waiting executors). */
  limit: number;
  /** Lease length in ms; the lease expires at the database's now() + leaseMs. */
  leaseMs: number;
  /**
   * Observer: a rate-limited queue's bucket held fewer tokens than this claim could have taken.
   * `nextTokenMs` is when the bucket next holds a whole token (from what this claim left), in ms
   * from now: the caller can claim again then instead of on its poll.
   */
  onRateLimited?: (queue: string, nextTokenMs: number) => void;
  /**
   * A pool opened with `genericPlans` (db.ts): a gated claim then runs there as one statement
   * (its gate counted only when it took nothing), instead of a pipelined transaction that sets the plan mode
   * locally. Same statements, same plans, no BEGIN / SET / COMMIT: after 20 ms idle, enqueue ack →
   * claimed 1.39–1.48 → 1.12–1.25 ms (one job, embedded PostgreSQL 18.4 and PostgreSQL 15, a
   * throwaway probe alternating both forms, medians of ~190 each).
   */
  generic?: Sql;
}

/**
 * Claims up to `limit` runnable jobs: state queued/retry_waiting with run_at <= now(), queue not
 * paused, within each queue's concurrency limit. Sets running, attempt+1, a fresh lease token and
 * lease_expires_at. Order: priority, run_at, id. With `tasks` listed, only jobs of those tasks.
 *
 * Queues with a concurrency limit are claimed first, one short transaction each: lock the queue
 * row (serialising claimers of that queue), then count its running jobs in a *later* statement
 * than the lock, so that READ COMMITTED gives it a fresh snapshot that sees the previous lock
 * holder's committed claims (counting inside the statement that takes the lock misses them:
 * pgqueuer #761), and claim at most the remainder. The rest is claimed in one statement without
 * any queue lock.
 *
 * The paused/limited set is read fresh on every call (a primary-key-sized query): pausing takes
 * effect on the next claim, and the claim statements never carry a filter the planner has to
 * guess at — see CLAIM_ALL_SQL. Two shapes fold that read into the claim's one round trip: one
 * queue (claimQueue) and, while no queue among them is paused or limited, declared tasks or
 * listed queues (claimGated); docs/architecture.md §5.
 */
export async function jobClaim(exec: Exec, params: ClaimParams): Promise<ClaimedJob[]> {
  let remaining = Math.max(0, Math.floor(params.limit));
  if (remaining === 0 || (params.queues !== '*' && params.queues.length === 0)) return [];
  if (params.tasks !== undefined && params.tasks !== '*' && params.tasks.length === 0) return [];
  const listed = params.queues === '*' ? null : [...new Set(params.queues)];
  const tasks = params.tasks === undefined || params.tasks === '*' ? null : [...new Set(params.tasks)];
  // A pool, not a caller's transaction: only a pool can reserve a connection for a pipeline.
  const pool = 'savepoint' in exec ? undefined : exec;
  if (pool && listed?.length === 1) {
    // One queue (a targeted wake-up, or a worker of one queue): policy, lock and claim in one round trip.
    const queue = listed[0]!;
    const { policy, rows } = await claimQueue(pool, queue, tasks, remaining, params.leaseMs);
    if (!policy || policy.rate === null || policy.paused) return rows;
    return claimLimited(exec, queue, tasks, remaining, params.leaseMs, { rated: true, counted: policy.limit !== null }, params.onRateLimited);
  }
  const claimed: ClaimedJob[] = [];
  if (pool && (tasks !== null || listed !== null) && Date.now() - (specialSeen.get(pool) ?? -Infinity) > SPECIAL_MEMORY_MS) {
    const gated = await claimGated(pool, params.generic, listed, tasks, remaining, params.leaseMs);
    if (!gated.special) return gated.rows;
    claimed.push(...gated.rows);
    remaining -= gated.rows.length;
    if (remaining === 0) return claimed;
  }
  const special = await pg(exec<{ name: string; paused: boolean; limit: number | null; rate: number | null }[]>`
    select name, paused, concurrency_limit as limit, rate_limit as rate from queues
     where (paused or concurrency_limit is not null or rate_limit is not null)
       and (${listed}::text[] is null or name = any(${listed}::text[]))`);
  if (pool) {
    if (special.length > 0) specialSeen.set(pool, Date.now());
    else specialSeen.delete(pool);
  }
  for (const q of special) {
    if (q.paused || (q.limit === null && q.rate === null) || remaining === 0) continue;
    const rows = q.rate === null && pool
      ? (await claimQueue(pool, q.name, tasks, remaining, params.leaseMs)).rows
      : await claimLimited(exec, q.name, tasks, remaining, params.leaseMs, { rated: q.rate !== null, counted: q.limit !== null }, params.onRateLimited);
    claimed.push(...rows);
    remaining -= rows.length;
  }
  if (remaining > 0) {
    const excluded = special.map((q) => q.name);
    claimed.push(...(await claimUnlimited(exec, listed, tasks, excluded, remaining, params.leaseMs)));
  }
  return claimed;
}

function claimUnlimited(exec: Exec, listed: string[] | null, tasks: string[] | null, excluded: string[], limit: number, leaseMs: number): Promise<ClaimedJob[]> {
  if (listed === null) {
    if (tasks === null) {
      if (excluded.length === 0) return pg(exec.unsafe<ClaimedJob[]>(CLAIM_ALL_SQL, [limit, leaseMs] as never[]));
      return pg(exec.unsafe<ClaimedJob[]>(CLAIM_ALL_EXCEPT_SQL, [limit, leaseMs, excluded] as never[], { prepare: false }));
    }
    if (excluded.length === 0) return pg(exec.unsafe<ClaimedJob[]>(CLAIM_TASKS_SQL, [tasks, limit, leaseMs] as never[]));
    return pg(exec.unsafe<ClaimedJob[]>(CLAIM_TASKS_EXCEPT_SQL, [tasks, limit, leaseMs, excluded] as never[], { prepare: false }));
  }
  const queues = listed.filter((q) => !excluded.includes(q));
  if (queues.length === 0) return Promise.resolve([]);
  if (tasks === null) return pg(exec.unsafe<ClaimedJob[]>(CLAIM_LISTED_SQL, [queues, limit, leaseMs] as never[]));
  return pg(exec.unsafe<ClaimedJob[]>(CLAIM_LISTED_TASKS_SQL, [queues, tasks, limit, leaseMs] as never[]));
}

interface QueuePolicy {
  paused: boolean;
  limit: number | null;
  rate: number | null;
}

/**
 * Runs `send`'s statements in one transaction and one round trip: BEGIN (with generic plans), the
 * statements, COMMIT, pipelined on one reserved connection. They still run one after the other,
 * each in its own READ COMMITTED snapshot. If one fails, the ones after it fail too (the
 * transaction is aborted) and COMMIT rolls it back; the first error is thrown.
 *
 * On this 2-vCPU machine one round trip to a backend that sat idle costs 1–3 ms (strace of role
 * all: a primary-key SELECT of queues took 3.2 ms between write and read; pgbench with a 50 ms
 * sleep between statements: `select 1` 0.41 ms, a one-row insert 1.44 ms, against 0.06 and 0.40
 * back to back), so on the dispatch path round trips, not statements, are what cost.
 */
async function pipelined(sql: Sql, send: (conn: postgres.ReservedSql) => Promise<unknown>[]): Promise<unknown[]> {
  const conn = await pg(sql.reserve());
  try {
    const settled = await Promise.allSettled([
      // The claims sent here have generic plans that are their custom plans (tested), and a custom
      // plan costs a plan per call: 0.6–0.9 ms of a claim with tasks (1.97 → 1.36 ms, PostgreSQL 15).
      conn.unsafe('begin; set local plan_cache_mode = force_generic_plan'),
      ...send(conn),
      conn.unsafe('commit'),
    ]);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw toDispatchError(failed.reason);
    return settled.slice(1, -1).map((r) => (r as PromiseFulfilledResult<unknown>).value);
  } finally {
    conn.release();
  }
}

/**
 * One queue in one round trip (pipelined): its policy, its row lock when it has a concurrency
 * limit (and no rate limit), then the claim (CLAIM_QUEUE_SQL, which counts the free slots itself,
 * in a snapshot taken once the lock is held). A rate-limited queue claims nothing here; its policy
 * tells the caller to go through claimLimited. Before, a limited queue's claim took six round
 * trips (the policy read; BEGIN; lock and count; the claim's Parse/Describe and its Bind/Execute;
 * COMMIT), and a freed slot waited ~8 ms for its next job (bench limited workload: 85% of L / job length).
 */
async function claimQueue(sql: Sql, queue: string, tasks: string[] | null, most: number, leaseMs: number): Promise<{ policy: QueuePolicy | undefined; rows: ClaimedJob[] }> {
  const [policy, , rows] = await pipelined(sql, (conn) => [
    conn<QueuePolicy[]>`select paused, concurrency_limit as limit, rate_limit as rate from queues where name = ${queue}`,
    conn`select 1 from queues where name = ${queue} and concurrency_limit is not null and rate_limit is null for update`,
    tasks === null
      ? conn.unsafe<ClaimedJob[]>(CLAIM_QUEUE_SQL, [most, leaseMs, queue] as never[], PREPARED)
      : conn.unsafe<ClaimedJob[]>(CLAIM_QUEUE_TASKS_SQL, [most, leaseMs, queue, tasks] as never[], PREPARED),
  ]);
  return { policy: (policy as QueuePolicy[])[0], rows: [...(rows as ClaimedJob[])] };
}

/**
 * Several queues or every queue, for declared tasks or listed queues, in one round trip while no
 * queue among them is paused or limited: a gated claim (CLAIM_*_GATED_SQL) and, after it, the
 * count of such queues; pipelined in a transaction on `pool`, or, given the generic-plan pool of
 * ClaimParams.generic, as the claim alone there, counted only when it came back empty. `special` means the gate
 * may have been closed: the caller claims the rest with the ordinary path. Before, this took three
 * round trips (the policy read, then the claim's Parse/Describe and its Bind/Execute) and a plan per call.
 */
async function claimGated(pool: Sql, generic: Sql | undefined, listed: string[] | null, tasks: string[] | null, limit: number, leaseMs: number): Promise<{ rows: ClaimedJob[]; special: boolean }> {
  const claim = (conn: Sql | postgres.ReservedSql) => listed === null
    ? conn.unsafe<ClaimedJob[]>(CLAIM_TASKS_GATED_SQL, [tasks, limit, leaseMs] as never[], PREPARED)
    : tasks === null
      ? conn.unsafe<ClaimedJob[]>(CLAIM_LISTED_GATED_SQL, [listed, limit, leaseMs] as never[], PREPARED)
      : conn.unsafe<ClaimedJob[]>(CLAIM_LISTED_TASKS_GATED_SQL, [listed, tasks, limit, leaseMs] as never[], PREPARED);
  const gate = (conn: Sql | postgres.ReservedSql) => conn<{ n: number }[]>`select count(*)::int as n from queues
       where (paused or concurrency_limit is not null or rate_limit is not null)
         and (${listed}::text[] is null or name = any(${listed}::text[]))`;
  if (!generic) {
    const [rows, count] = await pipelined(pool, (conn) => [claim(conn), gate(conn)]);
    return { rows: [...(rows as ClaimedJob[])], special: ((count as { n: number }[])[0]?.n ?? 0) > 0 };
  }
  // The claim alone, one statement that commits by itself. Rows come back only through an open
  // gate, so a claim that took jobs needs no count (bounded rounds and pickups: one statement per
  // round instead of two); only an empty one asks, in a second round trip, whether the gate was closed.
  const rows = await pg(claim(generic));
  if (rows.length > 0) return { rows: [...rows], special: false };
  const [count] = await pg(gate(generic));
  return { rows: [], special: (count?.n ?? 0) > 0 };
}

/**
 * Pools that saw a paused or limited queue within SPECIAL_MEMORY_MS: their claims go the ordinary
 * way at once (a gated claim would find its gate closed and cost a round trip more).
 */
const specialSeen = new WeakMap<object, number>();
const SPECIAL_MEMORY_MS = 5_000;

/**
 * One rate-limited queue, in one transaction under its row lock. A rate-limited queue's lock is taken
 * by an UPDATE that also refills its token bucket: the SET is evaluated once the lock is held, with
 * clock_timestamp() of that moment, so each claimer sees the tokens its predecessor left and the
 * time since. The claim takes at most floor(tokens) jobs and the spent tokens are written back
 * before commit, so however many api pods claim, the bucket is never overdrawn. The transaction
 * commits asynchronously (CLAIM_ASYNC_COMMIT in its claim statement): a database crash can forget
 * the tokens spent in its last few milliseconds.
 */
function claimLimited(exec: Exec, queue: string, tasks: string[] | null, limit: number, leaseMs: number, policy: { rated: boolean; counted: boolean }, onRateLimited?: ClaimParams['onRateLimited']): Promise<ClaimedJob[]> {
  return inTx(exec, async (tx) => {
    // The running count is sent right behind the lock statement (pipelined, one round trip for
    // both): the server runs it only once the lock statement has finished, i.e. with the lock held,
    // so its fresh READ COMMITTED snapshot still sees every claim the previous holder committed.
    const countRunning = () => pg(tx<{ n: number }[]>`
        select count(*)::int as n from jobs where queue = ${queue} and state = 'running'`);
    const lock = policy.rated
      ? pg(tx<{ limit: number | null; paused: boolean; rate: number | null; tokens: number | null; intervalMs: number | null }[]>`
          update queues set
            rate_tokens = case when rate_limit is null then null else least(rate_limit::float8, coalesce(rate_tokens, rate_limit::float8)
              + greatest(0, extract(epoch from clock_timestamp() - coalesce(rate_updated_at, clock_timestamp())) * 1000) * rate_limit / rate_interval_ms) end,
            rate_updated_at = clock_timestamp()
           where name = ${queue}
          returning concurrency_limit as limit, paused, rate_limit as rate, rate_tokens as tokens, rate_interval_ms as "intervalMs"`)
      : pg(tx<{ limit: number | null; paused: boolean; rate: number | null; tokens: number | null; intervalMs: number | null }[]>`
          select concurrency_limit as limit, paused, null::int as rate, null::float8 as tokens, null::int as "intervalMs" from queues where name = ${queue} for update`);
    const [[q], counted] = await Promise.all([lock, policy.counted ? countRunning() : Promise.resolve(undefined)]);
    if (!q || q.paused || (q.limit === null && q.rate === null)) return [];
    let room = limit;
    if (q.limit !== null) {
      // The limit was set between the policy read and the lock: count now, with the lock held.
      const [running] = counted ?? (await countRunning());
      room = Math.min(room, q.limit - (running?.n ?? 0));
    }
    const budget = q.rate === null ? room : Math.floor((q.tokens ?? 0) + 1e-9);
    const limitedByRate = budget < room;
    room = Math.min(room, budget);
    // The bucket refills rate_limit tokens per rate_interval_ms: the next whole token is due when
    // what this claim leaves (`left`, below 1 when the bucket cut the claim short) reaches 1.
    const nextTokenMs = (left: number) => Math.max(0, (1 - left) * (q.intervalMs ?? 1000) / (q.rate ?? 1));
    if (room <= 0) {
      if (limitedByRate) onRateLimited?.(queue, nextTokenMs(q.tokens ?? 0));
      return [];
    }
    const rows = tasks !== null
      ? await pg(tx.unsafe<ClaimedJob[]>(CLAIM_RATED_TASKS_SQL, [room, leaseMs, queue, tasks] as never[], PREPARED))
      : await pg(tx.unsafe<ClaimedJob[]>(CLAIM_RATED_SQL, [room, leaseMs, queue] as never[], PREPARED));
    if (q.rate !== null && rows.length > 0) await pg(tx`update queues set rate_tokens = rate_tokens - ${rows.length} where name = ${queue}`);
    if (limitedByRate && rows.length === room) onRateLimited?.(queue, nextTokenMs((q.tokens ?? 0) - rows.length));
    return rows;
  });
}
