/**
 * The text of every claim statement (job-claim.ts sends them). Each selects the jobs to claim in
 * claim order (priority, run_at, id) and updates them to running with a fresh lease token in the
 * same statement; they differ in how they find those jobs, and each form is the one that kept its
 * index walk on the backlogs tested in job-claim.pg.test.ts and job-claim-queue.pg.test.ts.
 */
import { CLAIMED_RETURNING } from './rows.js';

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
export const CLAIM_RATED_SQL = claimQueueSql('allowed');
export const CLAIM_RATED_TASKS_SQL = claimQueueTasksSql('allowed');

/**
 * A one-time gate (an uncorrelated condition: PostgreSQL evaluates it once, as a One-Time Filter
 * above the scan) that is true while none of the queues `among` (an SQL text[] expression; null:
 * all) is paused, limited or rate-limited. A gated claim needs no policy read before it: it claims
 * nothing when such a queue exists, and its caller, which reads the policy right after it in the
 * same pipeline, claims the rest the ordinary way.
 */
const openQueues = (among: string | null) => `(select count(*) from queues
             where (paused or concurrency_limit is not null or rate_limit is not null)${among === null ? '' : ` and name = any(${among})`}) = 0`;

/**
 * CLAIM_TASKS_SQL, CLAIM_LISTED_SQL and CLAIM_LISTED_TASKS_SQL behind the gate. Prepared and sent
 * with generic plans (their ranges give the order, so the generic plan is the custom one; for the
 * listed-tasks form the custom plan on PostgreSQL 15 was the worse one, tested).
 */
export const CLAIM_TASKS_GATED_SQL = claimRanges('unnest($1::text[]) as t(name)', 'task', `task >= t.name and task <= t.name and ${openQueues(null)}`, '$2', '$3');
export const CLAIM_LISTED_GATED_SQL = claimRanges('unnest($1::text[]) as q(name)', 'queue', `queue >= q.name and queue <= q.name and ${openQueues('$1::text[]')}`, '$2', '$3');
export const CLAIM_LISTED_TASKS_GATED_SQL = claimRanges('unnest($2::text[]) as t(name)', 'task', `task = t.name and queue = any($1::text[]) and ${openQueues('$1::text[]')}`, '$3', '$4');
