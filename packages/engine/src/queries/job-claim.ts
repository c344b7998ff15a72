import type { ClaimedJob } from '@pgdispatch/core/types';
import type { Exec } from '../db.js';
import { inTx } from '../db.js';
import { pg } from '../pg-errors.js';
import { CLAIMED_RETURNING } from './rows.js';

export interface ClaimParams {
  /** Queues to claim from: `*` for all, or a list of names. */
  queues: '*' | readonly string[];
  /** Most jobs to claim (the outstanding demand of the waiting executors). */
  limit: number;
  /** Lease length in ms; the lease expires at the database's now() + leaseMs. */
  leaseMs: number;
  /**
   * Queues known to have a concurrency limit (a cache the caller refreshes, e.g. every poll).
   * Saves a round trip per claim; a stale list is safe: paused and limited queues are excluded
   * from the unlimited claim inside its own statement, and each limited claim re-reads its
   * queue row under lock. Omitted: read from the queues table.
   */
  limitedQueues?: readonly string[];
}

/** Names of the queues with a concurrency limit (the cache behind ClaimParams.limitedQueues). */
export async function queueLimitedNames(exec: Exec): Promise<string[]> {
  const rows = await pg(exec<{ name: string }[]>`select name from queues where concurrency_limit is not null order by name`);
  return rows.map((r) => r.name);
}

/**
 * Claims up to `limit` runnable jobs: state queued/retry_waiting with run_at <= now(), queue not
 * paused, within each queue's concurrency limit. Sets running, attempt+1, a fresh lease token and
 * lease_expires_at. Order: priority, run_at, id.
 *
 * Queues with a concurrency limit are claimed first, one short transaction each: lock the queue
 * row (serialising claimers of that queue), then count its running jobs in a *separate* statement
 * so that READ COMMITTED gives it a fresh snapshot that sees the previous lock holder's committed
 * claims (counting inside the claiming statement misses them: pgqueuer #761), then claim at most
 * the remainder. The rest is claimed in one statement without any queue lock.
 */
export async function jobClaim(exec: Exec, params: ClaimParams): Promise<ClaimedJob[]> {
  let remaining = Math.max(0, Math.floor(params.limit));
  if (remaining === 0 || (params.queues !== '*' && params.queues.length === 0)) return [];
  const listed = params.queues === '*' ? null : [...params.queues];
  const limited = (params.limitedQueues ?? (await queueLimitedNames(exec))).filter((q) => listed === null || listed.includes(q));
  const claimed: ClaimedJob[] = [];
  for (const name of limited) {
    if (remaining === 0) break;
    const rows = await claimLimited(exec, name, remaining, params.leaseMs);
    claimed.push(...rows);
    remaining -= rows.length;
  }
  if (remaining > 0) claimed.push(...(await claimUnlimited(exec, listed, remaining, params.leaseMs)));
  return claimed;
}

/** The SET list of every claim; `lease` is the parameter holding the lease length in ms. */
const claimSet = (lease: string) => `state = 'running', attempt = j.attempt + 1, lease_token = gen_random_uuid(),
            lease_expires_at = now() + ${lease} * interval '1 millisecond', updated_at = now()`;

/**
 * Excludes paused queues and queues with a limit, read inside the claim statement. An anti-join,
 * not `queue <> all(array(select …))`: the planner estimated that filter at one row and chose a
 * seq scan + sort of the whole backlog (490 ms on 1M jobs) where the anti-join keeps the ordered
 * index scan (2.4 ms), in custom and generic plans alike.
 */
const notExcluded = (queue: string) =>
  `not exists (select 1 from queues x where x.name = ${queue} and (x.paused or x.concurrency_limit is not null))`;

/**
 * Claim from every queue except paused or limited ones; $1 limit, $2 lease ms. Walks
 * jobs_claim_idx (priority, run_at, id) in claim order and stops after $2 unlocked rows: 2.4 ms and
 * 103 index buffers for limit 100 on a 1M-job backlog (docs/architecture.md). SKIP LOCKED makes
 * concurrent claimers pass over each other's rows instead of queuing on them. Caveat: rows of the
 * excluded queues that sort first are filtered one by one, so a paused queue with a huge
 * high-priority backlog slows this scan (measure before relying on pausing such a queue).
 * Exported so scripts/explain-claim.mjs measures exactly this text.
 */
export const CLAIM_ALL_SQL = `with picked as (
       select id from jobs
        where state in ('queued', 'retry_waiting') and run_at <= now()
          and ${notExcluded('jobs.queue')}
        order by priority, run_at, id
        limit $1
        for update skip locked
     )
     update jobs j set ${claimSet('$2')}
       from picked where j.id = picked.id
     returning ${CLAIMED_RETURNING}`;

/**
 * Claim from the listed queues $1; $2 limit, $3 lease ms. One ordered jobs_queue_claim_idx range
 * per queue (LATERAL), each locking at most $2 rows with SKIP LOCKED, then the best $2 across them.
 * Not `queue = any($1)` on jobs_claim_idx: the planner assumes queues are spread evenly through the
 * priority order and, on a 1M backlog whose listed queue sorted behind the others, filtered 600k
 * rows (1.3 s) where this takes milliseconds. Rows locked but not picked stay queued and are
 * released at commit (the end of the statement unless the caller holds a transaction).
 */
export const CLAIM_LISTED_SQL = `with candidates as (
       select c.id, c.priority, c.run_at
         from unnest($1::text[]) as q(name)
         cross join lateral (
           select id, priority, run_at from jobs
            where queue = q.name and state in ('queued', 'retry_waiting') and run_at <= now()
            order by priority, run_at, id
            limit $2
            for update skip locked
         ) c
        where ${notExcluded('q.name')}
     ), picked as (
       select id from candidates order by priority, run_at, id limit $2
     )
     update jobs j set ${claimSet('$3')}
       from picked where j.id = picked.id
     returning ${CLAIMED_RETURNING}`;

/** The claim statement for one queue with a concurrency limit ($1 queue, $2 room, $3 lease ms). */
export const CLAIM_LIMITED_SQL = `with picked as (
         select id from jobs
          where queue = $1 and state in ('queued', 'retry_waiting') and run_at <= now()
          order by priority, run_at, id
          limit $2
          for update skip locked
       )
       update jobs j set ${claimSet('$3')}
         from picked where j.id = picked.id
       returning ${CLAIMED_RETURNING}`;

function claimUnlimited(exec: Exec, listed: string[] | null, limit: number, leaseMs: number): Promise<ClaimedJob[]> {
  if (listed === null) return pg(exec.unsafe<ClaimedJob[]>(CLAIM_ALL_SQL, [limit, leaseMs] as never[]));
  return pg(exec.unsafe<ClaimedJob[]>(CLAIM_LISTED_SQL, [[...new Set(listed)], limit, leaseMs] as never[]));
}

function claimLimited(exec: Exec, queue: string, limit: number, leaseMs: number): Promise<ClaimedJob[]> {
  return inTx(exec, async (tx) => {
    const [q] = await pg(tx<{ limit: number | null; paused: boolean }[]>`
      select concurrency_limit as limit, paused from queues where name = ${queue} for update`);
    if (!q || q.paused || q.limit === null) return [];
    const [running] = await pg(tx<{ n: number }[]>`
      select count(*)::int as n from jobs where queue = ${queue} and state = 'running'`);
    const room = Math.min(limit, q.limit - (running?.n ?? 0));
    if (room <= 0) return [];
    return pg(tx.unsafe<ClaimedJob[]>(CLAIM_LIMITED_SQL, [queue, room, leaseMs] as never[]));
  });
}
