import type { ClaimedJob } from '@pgdispatch/core/types';
import type { Exec, Sql } from '../db.js';
import { inTx } from '../db.js';
import { pg, toDispatchError } from '../pg-errors.js';
import { PREPARED } from './prepared.js';
import { CLAIMED_RETURNING } from './rows.js';

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
 * guess at — see CLAIM_ALL_SQL.
 */
export async function jobClaim(exec: Exec, params: ClaimParams): Promise<ClaimedJob[]> {
  let remaining = Math.max(0, Math.floor(params.limit));
  if (remaining === 0 || (params.queues !== '*' && params.queues.length === 0)) return [];
  if (params.tasks !== undefined && params.tasks !== '*' && params.tasks.length === 0) return [];
  const listed = params.queues === '*' ? null : [...new Set(params.queues)];
  const tasks = params.tasks === undefined || params.tasks === '*' ? null : [...new Set(params.tasks)];
  if (listed?.length === 1 && !('savepoint' in exec)) {
    // One queue (a targeted wake-up, or a worker of one queue): policy, lock and claim in one round trip.
    const queue = listed[0]!;
    const { policy, rows } = await claimQueue(exec, queue, tasks, remaining, params.leaseMs);
    if (!policy || policy.rate === null || policy.paused) return rows;
    return claimLimited(exec, queue, tasks, remaining, params.leaseMs, { rated: true, counted: policy.limit !== null }, params.onRateLimited);
  }
  const special = await pg(exec<{ name: string; paused: boolean; limit: number | null; rate: number | null }[]>`
    select name, paused, concurrency_limit as limit, rate_limit as rate from queues
     where (paused or concurrency_limit is not null or rate_limit is not null)
       and (${listed}::text[] is null or name = any(${listed}::text[]))`);
  const claimed: ClaimedJob[] = [];
  for (const q of special) {
    if (q.paused || (q.limit === null && q.rate === null) || remaining === 0) continue;
    const rows = q.rate === null && !('savepoint' in exec)
      ? (await claimQueue(exec, q.name, tasks, remaining, params.leaseMs)).rows
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

/**
 * Appended to the WHERE of every claim's UPDATE: the claim's transaction commits without waiting
 * for its WAL flush (`set_config(…, true)` is `SET LOCAL`: it ends with the transaction, the
 * connection keeps `on`). An InitPlan, so it is evaluated once, before the first row is written.
 * No promise weakens: a claim lost in a crash leaves its job queued (the worker's later writes are
 * fenced off as lease_lost and the job runs again, which at-least-once allows), and the claimed
 * job's completion is a synchronous commit, whose flush covers the earlier claim's WAL too. What
 * it saves is one WAL flush on the claim path of every dispatch round (pickup, bounded rounds).
 */
export const CLAIM_ASYNC_COMMIT = `(select pg_catalog.set_config('synchronous_commit', 'off', true)) is not null`;

/** The SET list of every claim; `lease` is the parameter holding the lease length in ms. */
const claimSet = (lease: string) => `state = 'running', attempt = j.attempt + 1, lease_token = gen_random_uuid(),
            lease_expires_at = now() + ${lease} * interval '1 millisecond', updated_at = now()`;

/**
 * The UPDATE of every claim (after its `picked` CTE) and the final select. The update finds the
 * picked rows through `jobs_pkey` (`id = any(array(…))`): joined to `picked`, the planner hashed
 * the whole table instead (a seq scan of `jobs` per claim, 5.7 ms of a 14.6 ms claim of 500 on a
 * 20k-job table, and growing with it). The rows come back in claim order (priority, run_at, id),
 * which the update alone no longer gives.
 */
const claimUpdate = (lease: string) => `claimed as (
       update jobs j set ${claimSet(lease)}
        where j.id = any(array(select id from picked)) and ${CLAIM_ASYNC_COMMIT}
       returning ${CLAIMED_RETURNING}, j.priority as claim_priority, j.run_at as claim_run_at
     )
     select id, queue, task, payload, attempt, "maxAttempts", "leaseToken", "leaseExpiresAt"
       from claimed order by claim_priority, claim_run_at, id`;

/**
 * Claim from every queue ($1 limit, $2 lease ms): an ordered walk of jobs_claim_idx (priority,
 * run_at, id) that stops after $1 unlocked rows — 2.4 ms and 103 index buffers for limit 100 on a
 * 1M-job backlog (docs/architecture.md). No queue filter at all: any filter here is a selectivity
 * the planner must guess, and two forms we tried (`queue <> all(array(select …))` and a
 * `not exists` anti-join on queues) were guessed at ~1 row on a single-queue backlog, which made
 * it seq-scan and sort the whole backlog instead (150–490 ms per claim). SKIP LOCKED makes
 * concurrent claimers pass over each other's rows instead of queuing on them.
 * `filter` is an extra condition line (see CLAIM_ALL_EXCEPT_SQL).
 */
const claimAll = (filter: string) => `with picked as (
       select id from jobs
        where state in ('queued', 'retry_waiting') and run_at <= now()${filter}
        order by priority, run_at, id
        limit $1
        for update skip locked
     ), ${claimUpdate('$2')}`;

/** Exported so scripts/explain-claim.mjs measures exactly this text. */
export const CLAIM_ALL_SQL = claimAll('');

/**
 * Claim from every queue except $3 (paused or limited ones): only used while such queues exist,
 * and sent unprepared so that each execution is planned with the actual names (a generic plan
 * could not estimate `<> all($3)` and might pick a sort). Rows of the excluded queues that sort
 * first are filtered one by one, so a paused queue with a huge high-priority backlog slows this scan.
 */
export const CLAIM_ALL_EXCEPT_SQL = claimAll(`
          and queue <> all($3::text[])`);

/**
 * One ordered range of a claim index per element of `from` (LATERAL), each locking at most `limit`
 * rows with SKIP LOCKED, then the best `limit` across them. Rows locked but not picked stay queued
 * and are released at commit (the end of the statement unless the caller holds a transaction).
 *
 * Each range is ordered by its `lead` column first (`task` or `queue`) and selects it as the
 * closed range [name, name] rather than `= name`: an equality makes the column a constant, which
 * the planner drops from the ORDER BY, and then jobs_claim_idx (priority, run_at, id) with the name
 * as a row filter gives the same order. It took that plan when the statistics said every row
 * matched (one task in the whole backlog), and a declared task with no jobs — every worker declares
 * its built-in tasks — walked the whole backlog to find nothing (a claim on a 1M backlog: 700 ms;
 * the bench's 1M/10k figure fell to 0.09× and its soak collapsed as its backlog grew). As a range,
 * only jobs_task_claim_idx / jobs_queue_claim_idx give the order.
 */
const claimRanges = (from: string, lead: 'task' | 'queue', where: string, limit: string, lease: string, pick = limit) => `with candidates as (
       select c.id, c.priority, c.run_at
         from ${from}
         cross join lateral (
           select id, priority, run_at from jobs
            where ${where} and state in ('queued', 'retry_waiting') and run_at <= now()
            order by ${lead}, priority, run_at, id
            limit ${limit}
            for update skip locked
         ) c
     ), picked as (
       select id from candidates order by priority, run_at, id limit ${pick}
     ), ${claimUpdate(lease)}`;

/**
 * Claim from the listed queues $1; $2 limit, $3 lease ms. One ordered jobs_queue_claim_idx range
 * per queue. Not `queue = any($1)` on jobs_claim_idx: the planner assumes queues are spread evenly
 * through the priority order and, on a 1M backlog whose listed queue sorted behind the others,
 * filtered 600k rows (1.3 s) where this takes milliseconds.
 */
export const CLAIM_LISTED_SQL = claimRanges('unnest($1::text[]) as q(name)', 'queue', 'queue >= q.name and queue <= q.name', '$2', '$3');

/**
 * Claim jobs of the declared tasks $1 from every queue; $2 limit, $3 lease ms. One ordered range
 * of jobs_task_claim_idx (migration 0006) per task, for the same reason as CLAIM_LISTED_SQL: a
 * `task = any($1)` filter on jobs_claim_idx scans past every job of tasks no worker knows, and
 * during a rolling deploy those may be the jobs that sort first (docs/architecture.md §5).
 */
export const CLAIM_TASKS_SQL = claimRanges('unnest($1::text[]) as t(name)', 'task', 'task >= t.name and task <= t.name', '$2', '$3');

/**
 * CLAIM_TASKS_SQL except queues $4 (paused or limited), sent unprepared like CLAIM_ALL_EXCEPT_SQL.
 * The exclusion is a row filter inside each task's range.
 */
export const CLAIM_TASKS_EXCEPT_SQL = claimRanges('unnest($1::text[]) as t(name)', 'task', `task >= t.name and task <= t.name and queue <> all($4::text[])`, '$2', '$3');

/**
 * Claim jobs of the declared tasks $2 from the listed queues $1; $3 limit, $4 lease ms. The task is
 * an equality here, not the closed range of the other ranges: with the range, PostgreSQL 14 planned
 * this statement without jobs_task_claim_idx (the queue list gives its planner another index). One range
 * of jobs_task_claim_idx per task, with the queues as a row filter. Not one range per (queue,
 * task) pair: the planner then took jobs_queue_claim_idx and filtered the task, which is the
 * rolling-deploy trap again inside the queue (60,000 rows filtered, 17 ms for one pair, 156 ms
 * for 2 × 2; this form: 4–6 ms). What remains row by row is a declared task's jobs in queues
 * this worker does not pull, when they sort first (docs/architecture.md §5).
 */
export const CLAIM_LISTED_TASKS_SQL = claimRanges('unnest($2::text[]) as t(name)', 'task', 'task = t.name and queue = any($1::text[])', '$3', '$4');

/**
 * What a claim of queue `q` may take, at most `most`: its free running slots (its concurrency
 * limit minus its running jobs) when it has a limit, `most` when it has none or no row at all, 0
 * when it is paused or, unless `rated` is allowed (claimLimited, which spent the tokens first),
 * rate-limited. Part of the
 * claim statement, so it is counted in that statement's snapshot, which READ COMMITTED takes when
 * the statement starts: after the queue row lock of the statement before it, so it sees every
 * claim the lock's previous holder committed. The CASE counts nothing for an unlimited queue.
 */
const freeSlots = (q: string, most: string, rated: 'refused' | 'allowed') => `coalesce((
         select case when q.paused${rated === 'refused' ? ' or q.rate_limit is not null' : ''} then 0
                     when q.concurrency_limit is null then ${most}::int
                     else greatest(0, least(${most}::int, q.concurrency_limit
                            - (select count(*)::int from jobs r where r.queue = q.name and r.state = 'running'))) end
           from queues q where q.name = ${q}), ${most}::int)`;

/** Rows a one-queue claim locks: `most`, or the queue's concurrency limit when that is smaller. */
const lockable = (q: string, most: string) => `least(${most}::int, coalesce((select q.concurrency_limit from queues q where q.name = ${q}), ${most}::int))`;

/**
 * The claim statement for one queue ($1 most jobs, $2 lease ms, $3 queue), run after the queue
 * row lock when the queue has a concurrency limit: one jobs_queue_claim_idx range, locking at most
 * `lockable` rows, of which it takes `freeSlots`. Prepared: the range gives the order, so the
 * generic plan is the custom one (tested).
 */
const claimQueueSql = (rated: 'refused' | 'allowed') => claimRanges('(select $3::text as name) q', 'queue', 'queue >= q.name and queue <= q.name', lockable('$3', '$1'), '$2', freeSlots('$3', '$1', rated));
export const CLAIM_QUEUE_SQL = claimQueueSql('refused');

/**
 * CLAIM_QUEUE_SQL for the declared tasks $4: one jobs_task_claim_idx range per task with the queue
 * as a row filter, like CLAIM_LISTED_TASKS_SQL, but with the task as a closed range: with `=`, on a
 * limited queue whose unknown task's jobs sorted first, PostgreSQL 15 took jobs_claim_idx and
 * filtered 16,000 of them (12.7 ms) in both plans; with the range, only jobs_task_claim_idx gives the order.
 */
const claimQueueTasksSql = (rated: 'refused' | 'allowed') => claimRanges('unnest($4::text[]) as t(name)', 'task', 'task >= t.name and task <= t.name and queue = $3', lockable('$3', '$1'), '$2', freeSlots('$3', '$1', rated));
export const CLAIM_QUEUE_TASKS_SQL = claimQueueTasksSql('refused');

/** The same two for claimLimited: a rate-limited queue's claim, once its tokens are counted ($1 is what they allow). */
const CLAIM_RATED_SQL = claimQueueSql('allowed');
const CLAIM_RATED_TASKS_SQL = claimQueueTasksSql('allowed');

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
 * One queue, in one transaction and one round trip: BEGIN (with generic plans), its policy, its row lock when it has a
 * concurrency limit (and no rate limit), the claim (CLAIM_QUEUE_SQL, which counts the free slots
 * itself) and COMMIT go out pipelined on one reserved connection. They still run one after the
 * other, so the claim's snapshot is taken once the lock is held. If one fails, the ones after it
 * fail too (the transaction is aborted) and COMMIT rolls it back. A rate-limited queue claims
 * nothing here; its policy tells the caller to go through claimLimited.
 *
 * Before, a limited queue's claim took six round trips (the policy read; BEGIN; lock and count;
 * the claim's Parse/Describe and its Bind/Execute; COMMIT), and on this 2-vCPU machine one round
 * trip to a backend that sat idle costs 1–3 ms (strace of role all: a primary-key SELECT of
 * queues took 3.2 ms between write and read), so a freed slot waited ~8 ms for its next job
 * (bench limited workload: 85% of L / job length).
 */
async function claimQueue(sql: Sql, queue: string, tasks: string[] | null, most: number, leaseMs: number): Promise<{ policy: QueuePolicy | undefined; rows: ClaimedJob[] }> {
  const conn = await pg(sql.reserve());
  try {
    const settled = await Promise.allSettled([
      // The generic plans of these statements are their custom plans (tested), and a custom plan
      // costs a plan per call: 0.6–0.9 ms of a claim with tasks (1.97 → 1.36 ms, PostgreSQL 15).
      conn.unsafe('begin; set local plan_cache_mode = force_generic_plan'),
      conn<QueuePolicy[]>`select paused, concurrency_limit as limit, rate_limit as rate from queues where name = ${queue}`,
      conn`select 1 from queues where name = ${queue} and concurrency_limit is not null and rate_limit is null for update`,
      tasks === null
        ? conn.unsafe<ClaimedJob[]>(CLAIM_QUEUE_SQL, [most, leaseMs, queue] as never[], PREPARED)
        : conn.unsafe<ClaimedJob[]>(CLAIM_QUEUE_TASKS_SQL, [most, leaseMs, queue, tasks] as never[], PREPARED),
      conn.unsafe('commit'),
    ]);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw toDispatchError(failed.reason);
    const value = <T>(i: number) => (settled[i] as PromiseFulfilledResult<T>).value;
    return { policy: value<QueuePolicy[]>(1)[0], rows: [...value<ClaimedJob[]>(3)] };
  } finally {
    conn.release();
  }
}

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
