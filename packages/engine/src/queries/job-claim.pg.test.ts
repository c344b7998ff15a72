import { describe, expect, it } from 'vitest';
import type { Sql } from '../db.js';
import { useTestDatabase, withTestDatabase } from '../testing/database.js';
import { countByState, insertJob } from '../testing/factories.js';
import { scanned as scannedPlan } from '../testing/plans.js';
import { CLAIM_ALL_EXCEPT_SQL, CLAIM_ALL_SQL, CLAIM_LISTED_SQL, CLAIM_LISTED_TASKS_SQL, CLAIM_TASKS_SQL, jobClaim } from './job-claim.js';
import { jobCompleteMany } from './job-complete.js';
import { jobEnqueueMany } from './job-enqueue.js';
import { queuePause, queueResume, queueUpsert } from './queue-admin.js';

const db = useTestDatabase();

const LEASE = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('jobClaim', () => {
  it('claims in order of priority, then run_at, then id, and skips jobs not yet due', async () => {
    const q = 'order';
    const late = await insertJob(db.sql, { queue: q, priority: 0, runAtOffsetMs: -1_000 });
    const urgent = await insertJob(db.sql, { queue: q, priority: -5, runAtOffsetMs: 0 });
    const early = await insertJob(db.sql, { queue: q, priority: 0, runAtOffsetMs: -5_000 });
    const sameTimeA = await insertJob(db.sql, { queue: q, priority: 3, runAtOffsetMs: -9_000 });
    const sameTimeB = await db.sql`insert into jobs (queue, task, priority, run_at) select queue, task, priority, run_at from jobs where id = ${sameTimeA.id} returning id`;
    const future = await insertJob(db.sql, { queue: q, priority: -10, runAtOffsetMs: 60_000 });

    const oneByOne: number[] = [];
    for (;;) {
      const [c] = await jobClaim(db.sql, { queues: [q], limit: 1, leaseMs: LEASE });
      if (!c) break;
      oneByOne.push(c.id);
    }
    expect(oneByOne).toEqual([urgent.id, early.id, late.id, sameTimeA.id, sameTimeB[0]!.id]);
    expect(oneByOne).not.toContain(future.id);
  });

  it('returns a batch in claim order', async () => {
    const q = 'batch-order';
    const ids: number[] = [];
    for (const p of [9, 1, 5, 3, 7, 0]) ids.push((await insertJob(db.sql, { queue: q, priority: p })).id);
    const claimed = await jobClaim(db.sql, { queues: [q], limit: 4, leaseMs: LEASE });
    expect(claimed.map((c) => c.id)).toEqual([ids[5], ids[1], ids[3], ids[2]]);
  });

  it('returns a large batch in claim order too', async () => {
    const q = 'big-batch-order';
    const priorities = Array.from({ length: 600 }, (_, i) => (i * 7919) % 13);
    await jobEnqueueMany(db.sql, { items: priorities.map((priority) => ({ queue: q, task: 'noop', priority })) });
    const expected = await db.sql<{ id: number }[]>`select id from jobs where queue = ${q} order by priority, run_at, id limit 500`;
    const claimed = await jobClaim(db.sql, { queues: [q], limit: 500, leaseMs: LEASE });
    expect(claimed.map((c) => c.id)).toEqual(expected.map((r) => r.id));
  });

  it('claims across several listed queues in one global order, each job once', async () => {
    const a1 = await insertJob(db.sql, { queue: 'multi-a', priority: 2 });
    const b1 = await insertJob(db.sql, { queue: 'multi-b', priority: 1 });
    const a2 = await insertJob(db.sql, { queue: 'multi-a', priority: 0 });
    const b2 = await insertJob(db.sql, { queue: 'multi-b', priority: 3 });
    await insertJob(db.sql, { queue: 'multi-c', priority: -1 });
    const claimed = await jobClaim(db.sql, { queues: ['multi-b', 'multi-a', 'multi-b'], limit: 3, leaseMs: LEASE });
    expect(claimed.map((c) => c.id)).toEqual([a2.id, b1.id, a1.id]);
    const rest = await jobClaim(db.sql, { queues: ['multi-a', 'multi-b'], limit: 10, leaseMs: LEASE });
    expect(rest.map((c) => c.id)).toEqual([b2.id]);
    const [left] = await db.sql`select count(*)::int as n from jobs where queue = 'multi-c' and state = 'queued'`;
    expect(left!.n).toBe(1);
  });

  it('sets running, attempt+1, a fresh lease token and an expiry from the database clock', async () => {
    const q = 'lease-fields';
    const job = await insertJob(db.sql, { queue: q, attempt: 2, payload: { n: 1 } });
    const [before] = await db.sql<{ now: Date }[]>`select now()`;
    const [c] = await jobClaim(db.sql, { queues: [q], limit: 5, leaseMs: 45_000 });
    const [after] = await db.sql<{ now: Date }[]>`select now()`;
    expect(c).toMatchObject({ id: job.id, queue: q, task: 'noop', payload: { n: 1 }, attempt: 3, maxAttempts: 5 });
    expect(c!.leaseToken).toMatch(/^[0-9a-f-]{36}$/);
    expect(c!.leaseExpiresAt.getTime()).toBeGreaterThanOrEqual(before!.now.getTime() + 45_000);
    expect(c!.leaseExpiresAt.getTime()).toBeLessThanOrEqual(after!.now.getTime() + 45_000);
    const [row] = await db.sql`select state, attempt, lease_token from jobs where id = ${job.id}`;
    expect(row).toEqual({ state: 'running', attempt: 3, lease_token: c!.leaseToken });
  });

  it('claims retry_waiting jobs once due but never running or finished ones', async () => {
    const q = 'states';
    const waiting = await insertJob(db.sql, { queue: q, state: 'retry_waiting', attempt: 1 });
    for (const state of ['running', 'succeeded', 'failed', 'cancelled'] as const) await insertJob(db.sql, { queue: q, state });
    await insertJob(db.sql, { queue: q, state: 'retry_waiting', runAtOffsetMs: 60_000 });
    const claimed = await jobClaim(db.sql, { queues: [q], limit: 10, leaseMs: LEASE });
    expect(claimed.map((c) => [c.id, c.attempt])).toEqual([[waiting.id, 2]]);
  });

  it('claims only from the listed queues, or from all with *', async () => {
    const a = await insertJob(db.sql, { queue: 'pick-a' });
    const b = await insertJob(db.sql, { queue: 'pick-b' });
    expect((await jobClaim(db.sql, { queues: ['pick-b', 'nonexistent'], limit: 10, leaseMs: LEASE })).map((c) => c.id)).toEqual([b.id]);
    expect(await jobClaim(db.sql, { queues: [], limit: 10, leaseMs: LEASE })).toEqual([]);
    expect(await jobClaim(db.sql, { queues: ['pick-a'], limit: 0, leaseMs: LEASE })).toEqual([]);
    const all = await jobClaim(db.sql, { queues: '*', limit: 100, leaseMs: LEASE });
    expect(all.map((c) => c.id)).toContain(a.id);
  });

  it('a paused queue yields nothing until resumed; other queues are unaffected', async () => {
    await queueUpsert(db.sql, { name: 'paused-q' });
    await queueUpsert(db.sql, { name: 'paused-limited', concurrencyLimit: 5 });
    const p = await insertJob(db.sql, { queue: 'paused-q' });
    const pl = await insertJob(db.sql, { queue: 'paused-limited' });
    const free = await insertJob(db.sql, { queue: 'paused-other' });
    await queuePause(db.sql, { name: 'paused-q' });
    await queuePause(db.sql, { name: 'paused-limited' });
    expect(await jobClaim(db.sql, { queues: ['paused-q', 'paused-limited'], limit: 10, leaseMs: LEASE })).toEqual([]);
    const star = await jobClaim(db.sql, { queues: '*', limit: 100, leaseMs: LEASE });
    expect(star.map((c) => c.id)).toContain(free.id);
    expect(star.map((c) => c.id)).not.toContain(p.id);
    expect(star.map((c) => c.id)).not.toContain(pl.id);
    await queueResume(db.sql, { name: 'paused-q' });
    await queueResume(db.sql, { name: 'paused-limited' });
    const resumed = await jobClaim(db.sql, { queues: ['paused-q', 'paused-limited'], limit: 10, leaseMs: LEASE });
    expect(resumed.map((c) => c.id).sort((x, y) => x - y)).toEqual([p.id, pl.id]);
  });

  it('claims at most the remainder of a concurrency limit, from a listed queue and from `*`', async () => {
    // Its own database: the `*` claim must find nothing at all, whatever other tests left behind.
    await withTestDatabase(async (own) => {
      await queueUpsert(own.sql, { name: 'limit-2', concurrencyLimit: 2 });
      for (let i = 0; i < 5; i++) await insertJob(own.sql, { queue: 'limit-2' });
      expect(await jobClaim(own.sql, { queues: ['limit-2'], limit: 10, leaseMs: LEASE })).toHaveLength(2);
      expect(await jobClaim(own.sql, { queues: '*', limit: 10, leaseMs: LEASE })).toEqual([]);
      expect(await countByState(own.sql, 'limit-2')).toEqual({ running: 2, queued: 3 });
      await queueUpsert(own.sql, { name: 'limit-2', concurrencyLimit: null });
      expect(await jobClaim(own.sql, { queues: ['limit-2'], limit: 10, leaseMs: LEASE })).toHaveLength(3);
    });
  });

  it('composes inside a caller transaction: a rollback un-claims', async () => {
    const job = await insertJob(db.sql, { queue: 'tx-claim' });
    await db.sql
      .begin(async (tx) => {
        expect(await jobClaim(tx, { queues: ['tx-claim'], limit: 1, leaseMs: LEASE })).toHaveLength(1);
        throw new Error('rollback');
      })
      .catch(() => {});
    const [row] = await db.sql`select state, attempt from jobs where id = ${job.id}`;
    expect(row).toEqual({ state: 'queued', attempt: 0 });
  });
});

describe('jobClaim under concurrent claimers', () => {
  it('8 claimers on separate connections drain 5,000 jobs, each claimed exactly once', async () => {
    const q = 'drain';
    const N = 5_000;
    await jobEnqueueMany(db.sql, { items: Array.from({ length: N }, (_, i) => ({ queue: q, task: 'noop', payload: { i } })) });
    const pools = Array.from({ length: 8 }, () => db.connect(1));
    const perClaimer = await Promise.all(
      pools.map(async (sql) => {
        const mine: number[] = [];
        for (;;) {
          const batch = await jobClaim(sql, { queues: [q], limit: 25, leaseMs: LEASE });
          if (batch.length === 0) break;
          mine.push(...batch.map((c) => c.id));
          const out = await jobCompleteMany(sql, { items: batch.map((c) => ({ id: c.id, leaseToken: c.leaseToken })) });
          expect(out.every((o) => o.ok)).toBe(true);
        }
        return mine;
      }),
    );
    const all = perClaimer.flat();
    expect(all).toHaveLength(N);
    expect(new Set(all).size).toBe(N);
    expect(perClaimer.filter((m) => m.length > 0).length).toBeGreaterThan(1);
    expect(await countByState(db.sql, q)).toEqual({ succeeded: N });
    const [attempts] = await db.sql`select min(attempt)::int as lo, max(attempt)::int as hi from jobs where queue = ${q}`;
    expect(attempts).toEqual({ lo: 1, hi: 1 });
  });

  it('a concurrency limit of 3 is never exceeded by 8 concurrent claimers (sampled), and is reached', async () => {
    const q = 'limited';
    const LIMIT = 3;
    const N = 300;
    await queueUpsert(db.sql, { name: q, concurrencyLimit: LIMIT });
    await jobEnqueueMany(db.sql, { items: Array.from({ length: N }, () => ({ queue: q, task: 'noop' })) });
    const sampler = db.connect(1);
    const samples: number[] = [];
    let done = false;
    const sampling = (async () => {
      while (!done) {
        const [r] = await sampler<{ n: number }[]>`select count(*)::int as n from jobs where queue = ${q} and state = 'running'`;
        samples.push(r!.n);
      }
    })();
    const claimers: Sql[] = Array.from({ length: 8 }, () => db.connect(1));
    let completed = 0;
    await Promise.all(
      claimers.map(async (sql) => {
        let idle = 0;
        while (completed < N && idle < 200) {
          const batch = await jobClaim(sql, { queues: [q], limit: 2, leaseMs: LEASE });
          if (batch.length === 0) {
            idle++;
            await sleep(1);
            continue;
          }
          idle = 0;
          await sleep(3); // hold the jobs a moment, as a handler would
          await jobCompleteMany(sql, { items: batch.map((c) => ({ id: c.id, leaseToken: c.leaseToken })) });
          completed += batch.length;
        }
      }),
    );
    done = true;
    await sampling;
    expect(completed).toBe(N);
    expect(samples.length).toBeGreaterThan(50);
    expect(Math.max(...samples)).toBeLessThanOrEqual(LIMIT);
    expect(Math.max(...samples)).toBe(LIMIT);
    expect(await countByState(db.sql, q)).toEqual({ succeeded: N });
  });
});

describe('the claim plan on a deep single-queue backlog', () => {
  type PlanNode = { 'Node Type': string; 'CTE Name'?: string; 'Parent Relationship'?: string; Plans?: PlanNode[] };
  /** What each Sort node of the plan sorts (its outer input): the claim's final sort reads CTE `claimed`. */
  const sortInputs = (n: PlanNode): string[] => [
    ...(n['Node Type'] === 'Sort' ? (n.Plans ?? []).filter((c) => c['Parent Relationship'] === 'Outer').map((c) => `${c['Node Type']}:${c['CTE Name'] ?? ''}`) : []),
    ...(n.Plans ?? []).flatMap(sortInputs),
  ];
  const plan = async (sqlText: string, params: unknown[]) => {
    const [row] = await db.sql.unsafe<{ 'QUERY PLAN': { Plan: PlanNode }[] }[]>(`explain (format json) ${sqlText}`, params as never[]);
    const root = row!['QUERY PLAN'][0]!.Plan;
    // The backlog is never sorted; only the claimed rows are, to return them in claim order.
    expect(sortInputs(root).filter((x) => x !== 'CTE Scan:claimed')).toEqual([]);
    return JSON.stringify(root);
  };
  it('walks jobs_claim_idx in order and never sorts the backlog, with or without excluded queues', async () => {
    await queueUpsert(db.sql, { name: 'solo' });
    await db.sql`insert into jobs (queue, task) select 'solo', 'noop' from generate_series(1, 100000)`;
    await db.sql`analyze jobs`;
    await db.sql`analyze queues`;
    const all = await plan(CLAIM_ALL_SQL, [100, LEASE]);
    expect(all).toContain('jobs_claim_idx');
    await queueUpsert(db.sql, { name: 'held' });
    await queuePause(db.sql, { name: 'held' });
    const except = await plan(CLAIM_ALL_EXCEPT_SQL, [100, LEASE, ['held']]);
    expect(except).toContain('jobs_claim_idx');
    // And the claim itself takes the first jobs of the backlog.
    const claimed = await jobClaim(db.sql, { queues: '*', limit: 100, leaseMs: LEASE });
    expect(claimed).toHaveLength(100);
  });
});


const scanned = (text: string, params: unknown[]) => scannedPlan(db.sql, text, params);

describe('task routing', () => {
  it('claims only jobs of the declared tasks, from all or listed queues; the others stay queued', async () => {
    const known = await insertJob(db.sql, { queue: 'route-a', task: 'route.known', priority: 5 });
    const other = await insertJob(db.sql, { queue: 'route-a', task: 'route.other', priority: 0 });
    const knownB = await insertJob(db.sql, { queue: 'route-b', task: 'route.known', priority: 6 });
    const listed = await jobClaim(db.sql, { queues: ['route-a'], tasks: ['route.known', 'route.absent'], limit: 10, leaseMs: LEASE });
    expect(listed.map((c) => c.id)).toEqual([known.id]);
    const star = await jobClaim(db.sql, { queues: '*', tasks: ['route.known'], limit: 10, leaseMs: LEASE });
    expect(star.map((c) => c.id)).toEqual([knownB.id]);
    expect(await jobClaim(db.sql, { queues: '*', tasks: [], limit: 10, leaseMs: LEASE })).toEqual([]);
    const [row] = await db.sql`select state, attempt from jobs where id = ${other.id}`;
    expect(row).toEqual({ state: 'queued', attempt: 0 });
    // `*` (an old worker that declares nothing) still takes any task.
    const any = await jobClaim(db.sql, { queues: ['route-a'], tasks: '*', limit: 10, leaseMs: LEASE });
    expect(any.map((c) => c.id)).toEqual([other.id]);
  });

  it('respects paused queues and concurrency limits for declared tasks', async () => {
    await queueUpsert(db.sql, { name: 'route-paused' });
    await queuePause(db.sql, { name: 'route-paused' });
    await queueUpsert(db.sql, { name: 'route-limited', concurrencyLimit: 2 });
    await insertJob(db.sql, { queue: 'route-paused', task: 'route.t' });
    for (let i = 0; i < 4; i++) await insertJob(db.sql, { queue: 'route-limited', task: i % 2 ? 'route.t' : 'route.u', priority: i });
    const free = await insertJob(db.sql, { queue: 'route-free', task: 'route.t' });
    const claimed = await jobClaim(db.sql, { queues: '*', tasks: ['route.t'], limit: 10, leaseMs: LEASE });
    const byQueue = claimed.map((c) => [c.queue, c.task]).sort();
    expect(byQueue).toEqual([['route-free', 'route.t'], ['route-limited', 'route.t'], ['route-limited', 'route.t']]);
    expect(claimed.map((c) => c.id)).toContain(free.id);
    // The limit (2) is now reached by route.t jobs: route.u waits even though it is declared.
    expect(await jobClaim(db.sql, { queues: ['route-limited'], tasks: ['route.u'], limit: 10, leaseMs: LEASE })).toEqual([]);
  });

  it('on a backlog whose unknown task sorts first, the claim walks jobs_task_claim_idx and filters nothing', async () => {
    // 60,000 jobs of a task no worker knows (priority 0) ahead of 40,000 known ones: the
    // rolling-deploy trap. A task filter on jobs_claim_idx would remove all 60,000 first.
    await db.sql`insert into jobs (queue, task, priority)
      select 'trap-' || (g % 4), case when g % 10 < 6 then 'trap.unknown' else 'trap.known' end,
             (case when g % 10 < 6 then 0 else 1 end)::smallint
        from generate_series(1, 100000) g`;
    await db.sql`analyze jobs`;
    expect(await scanned(CLAIM_TASKS_SQL, [['trap.known'], 100, LEASE])).toEqual([{ index: 'jobs_task_claim_idx', rows: 100, removed: 0 }]);
    const listed = await scanned(CLAIM_LISTED_TASKS_SQL, [['trap-1'], ['trap.known'], 100, LEASE]);
    expect(listed.map((s) => s.index)).toEqual(['jobs_task_claim_idx']);
    // Only the other queues' jobs of the known task are filtered (3 of 4 queues), never the unknown task's.
    expect(listed[0]!.removed).toBeLessThan(1_000);
    const claimed = await jobClaim(db.sql, { queues: '*', tasks: ['trap.known'], limit: 100, leaseMs: LEASE });
    expect(claimed.map((c) => c.task)).toEqual(Array(100).fill('trap.known'));
  });

  it('declared tasks without jobs cost an empty index range, not a walk of the backlog', async () => {
    // Every worker declares its built-in tasks too. With one task in the whole backlog the statistics
    // say every row matches any task, and the planner took jobs_claim_idx with the task as a row
    // filter: each absent task walked all 100,000 entries to find nothing (a claim on a 1M backlog took
    // 700 ms; the bench's 1M/10k figure fell to 0.09× and its soak collapsed as its backlog grew).
    // `order by task, …` leaves jobs_task_claim_idx the only index that gives the order.
    await db.sql`delete from jobs`;
    await db.sql`insert into jobs (queue, task) select 'solo-' || (g % 2), 'solo.task' from generate_series(1, 100000) g`;
    await db.sql`analyze jobs`;
    const scans = await scanned(CLAIM_TASKS_SQL, [['solo.task', 'absent.a', 'absent.b'], 100, LEASE]);
    expect(scans.map((x) => x.index)).toEqual(['jobs_task_claim_idx']);
    expect(scans[0]!.removed).toBe(0);
    const listed = await scanned(CLAIM_LISTED_SQL, [['solo-1', 'absent-q'], 100, LEASE]);
    expect(listed.map((x) => x.index)).toEqual(['jobs_queue_claim_idx']);
    expect(listed[0]!.removed).toBe(0);
    await db.sql`delete from jobs`;
  });
});

describe('claim commit', () => {
  it('commits the claim asynchronously (SET LOCAL), and the connection keeps synchronous_commit on', async () => {
    const one = db.connect(1);
    try {
      const q = 'async-commit';
      await jobEnqueueMany(db.sql, { items: [{ queue: q, task: 't' }, { queue: q, task: 't' }, { queue: q, task: 't' }] });
      // Inside a transaction the setting is visible until it ends: every claim form sets it.
      const inside = await one.begin(async (tx) => {
        const listed = await jobClaim(tx, { queues: [q], limit: 1, leaseMs: LEASE });
        const [s] = await tx<{ v: string }[]>`select current_setting('synchronous_commit') as v`;
        return { claimed: listed.length, setting: s!.v };
      });
      expect(inside).toEqual({ claimed: 1, setting: 'off' });
      const routed = await one.begin(async (tx) => {
        const jobs = await jobClaim(tx, { queues: '*', tasks: ['t'], limit: 1, leaseMs: LEASE });
        const [s] = await tx<{ v: string }[]>`select current_setting('synchronous_commit') as v`;
        return { claimed: jobs.length, setting: s!.v };
      });
      expect(routed).toEqual({ claimed: 1, setting: 'off' });
      // Outside one, the claim's own implicit transaction ends with it: the connection is unchanged.
      expect(await jobClaim(one, { queues: '*', limit: 1, leaseMs: LEASE })).toHaveLength(1);
      const [after] = await one<{ v: string }[]>`select current_setting('synchronous_commit') as v`;
      expect(after!.v).toBe('on');
    } finally {
      await one.end();
    }
  });
});
