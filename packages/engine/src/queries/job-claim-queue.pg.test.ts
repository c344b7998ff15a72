import { describe, expect, it } from 'vitest';
import { isDispatchError } from '@pgdispatch/core/errors';
import { useTestDatabase, withTestDatabase } from '../testing/database.js';
import { countByState, insertJob } from '../testing/factories.js';
import { scanned } from '../testing/plans.js';
import { CLAIM_LISTED_TASKS_GATED_SQL, CLAIM_LISTED_GATED_SQL, CLAIM_QUEUE_SQL, CLAIM_QUEUE_TASKS_SQL, CLAIM_TASKS_GATED_SQL, jobClaim } from './job-claim.js';
import { queuePause, queueUpsert } from './queue-admin.js';

// The claim of one queue: BEGIN, its policy, its row lock when it has a concurrency limit, the claim
// (which counts the free slots itself) and COMMIT pipelined in one round trip (job-claim.ts, claimQueue).
const db = useTestDatabase();
const LEASE = 30_000;

describe('the one-queue claim statement counts the free slots itself', () => {
  it('takes the limit minus the running jobs, nothing from a paused or rate-limited queue, and $1 without a limit', async () => {
    await queueUpsert(db.sql, { name: 'slots-3', concurrencyLimit: 3 });
    await insertJob(db.sql, { queue: 'slots-3', state: 'running', leaseMs: LEASE });
    for (let i = 0; i < 6; i++) await insertJob(db.sql, { queue: 'slots-3' });
    // Asked for 5 (locks at most 5 rows), two slots are free.
    expect(await db.sql.unsafe(CLAIM_QUEUE_SQL, [5, LEASE, 'slots-3'])).toHaveLength(2);
    expect(await db.sql.unsafe(CLAIM_QUEUE_SQL, [5, LEASE, 'slots-3'])).toHaveLength(0);
    expect(await countByState(db.sql, 'slots-3')).toEqual({ running: 3, queued: 4 });
    await queueUpsert(db.sql, { name: 'slots-3', concurrencyLimit: 4 });
    await queuePause(db.sql, { name: 'slots-3' });
    expect(await db.sql.unsafe(CLAIM_QUEUE_SQL, [5, LEASE, 'slots-3'])).toHaveLength(0);
    expect(await db.sql.unsafe(CLAIM_QUEUE_TASKS_SQL, [5, LEASE, 'slots-3', ['t']])).toHaveLength(0);
    // The limit removed between the caller's policy read and its lock: $1 is all it takes.
    await queueUpsert(db.sql, { name: 'slots-3', concurrencyLimit: null });
    await db.sql`update queues set paused = false where name = 'slots-3'`;
    expect(await db.sql.unsafe(CLAIM_QUEUE_SQL, [2, LEASE, 'slots-3'])).toHaveLength(2);
    // A queue without a row (never configured) has no limit either.
    for (let i = 0; i < 3; i++) await insertJob(db.sql, { queue: 'unconfigured' });
    expect(await db.sql.unsafe(CLAIM_QUEUE_SQL, [2, LEASE, 'unconfigured'])).toHaveLength(2);
    // A rate-limited queue is the caller's (claimLimited spends its tokens): nothing here.
    await queueUpsert(db.sql, { name: 'rated', rateLimit: 100 });
    await insertJob(db.sql, { queue: 'rated' });
    expect(await db.sql.unsafe(CLAIM_QUEUE_SQL, [2, LEASE, 'rated'])).toHaveLength(0);
    expect(await jobClaim(db.sql, { queues: ['rated'], limit: 5, leaseMs: LEASE })).toHaveLength(1);
    await queuePause(db.sql, { name: 'rated' });
    await insertJob(db.sql, { queue: 'rated' });
    expect(await jobClaim(db.sql, { queues: ['rated'], limit: 5, leaseMs: LEASE })).toEqual([]);
  });

  it('on a queue whose unknown task sorts first, custom and generic plans walk their range and filter no unknown job, limited or not', async () => {
    await queueUpsert(db.sql, { name: 'ltrap', concurrencyLimit: 50 });
    await db.sql`insert into jobs (queue, task, priority)
      select case when g % 7 = 0 then 'ltrap-other' else 'ltrap' end,
             case when g % 10 < 6 then 'ltrap.unknown' else 'ltrap.known' end,
             (case when g % 10 < 6 then 0 else 1 end)::smallint
        from generate_series(1, 50000) g`;
    await db.sql`analyze jobs`;
    const claimScans = (s: { index: string }[]) => s.filter((x) => x.index !== 'jobs_running_idx');
    for (const generic of [false, true]) {
      const tasks = claimScans(await scanned(db.sql, CLAIM_QUEUE_TASKS_SQL, [50, LEASE, 'ltrap', ['ltrap.known', 'ltrap.absent']], { generic }));
      expect(tasks.map((s) => s.index)).toEqual(['jobs_task_claim_idx']);
      // Only the known task's jobs of the other queue are filtered (1 in 7), never the 30,000 unknown ones.
      expect(tasks[0]!.removed).toBeLessThan(100);
      const all = claimScans(await scanned(db.sql, CLAIM_QUEUE_SQL, [50, LEASE, 'ltrap'], { generic }));
      expect(all).toEqual([{ index: 'jobs_queue_claim_idx', rows: 50, removed: 0 }]);
    }
    const claimed = await jobClaim(db.sql, { queues: ['ltrap'], tasks: ['ltrap.known'], limit: 500, leaseMs: LEASE });
    expect(claimed).toHaveLength(50);
    expect(new Set(claimed.map((c) => c.task))).toEqual(new Set(['ltrap.known']));
    // Without the limit (and with no queues row for the other queue) the same ranges, $1 rows.
    await queueUpsert(db.sql, { name: 'ltrap', concurrencyLimit: null });
    for (const generic of [false, true]) {
      const tasks = claimScans(await scanned(db.sql, CLAIM_QUEUE_TASKS_SQL, [100, LEASE, 'ltrap-other', ['ltrap.known']], { generic }));
      expect(tasks.map((s) => s.index)).toEqual(['jobs_task_claim_idx']);
      expect(claimScans(await scanned(db.sql, CLAIM_QUEUE_SQL, [100, LEASE, 'ltrap'], { generic }))).toEqual([{ index: 'jobs_queue_claim_idx', rows: 100, removed: 0 }]);
    }
    expect(await jobClaim(db.sql, { queues: ['ltrap'], tasks: ['ltrap.known'], limit: 300, leaseMs: LEASE })).toHaveLength(300);
    await db.sql`delete from jobs where queue in ('ltrap', 'ltrap-other')`;
  });
});

describe('the pipelined one-queue claim', () => {
  it('a lock that times out fails the claim, changes nothing and leaves no transaction open; the next claim works', async () => {
    await queueUpsert(db.sql, { name: 'ltimeout', concurrencyLimit: 2 });
    const job = await insertJob(db.sql, { queue: 'ltimeout' });
    const impatient = db.connect(1, { statementTimeoutMs: 150 });
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = db.sql.begin(async (tx) => {
      await tx`select 1 from queues where name = 'ltimeout' for update`;
      locked();
      await released;
    });
    await isLocked;
    const err = await jobClaim(impatient, { queues: ['ltimeout'], limit: 5, leaseMs: LEASE }).then(() => null, (e: unknown) => e);
    release();
    await holder;
    expect(isDispatchError(err, 'unavailable')).toBe(true);
    expect(await countByState(db.sql, 'ltimeout')).toEqual({ queued: 1 });
    const [open] = await db.sql<{ n: number }[]>`select count(*)::int as n from pg_stat_activity
       where datname = current_database() and state like 'idle in transaction%'`;
    expect(open!.n).toBe(0);
    // Its one connection is usable again, outside any aborted transaction.
    const claimed = await jobClaim(impatient, { queues: ['ltimeout'], limit: 5, leaseMs: LEASE });
    expect(claimed.map((c) => c.id)).toEqual([job.id]);
  });

  it('a limit of 1 shared by claimers on 6 connections hands out one job at a time', async () => {
    await queueUpsert(db.sql, { name: 'lone', concurrencyLimit: 1 });
    for (let i = 0; i < 10; i++) await insertJob(db.sql, { queue: 'lone' });
    const pools = Array.from({ length: 6 }, () => db.connect(1));
    const rounds = await Promise.all(pools.map((sql) => jobClaim(sql, { queues: ['lone'], limit: 5, leaseMs: LEASE })));
    expect(rounds.flat()).toHaveLength(1);
    expect(await countByState(db.sql, 'lone')).toEqual({ running: 1, queued: 9 });
  });
});

describe('the gated claim (no policy read while no queue is paused or limited)', () => {
  it('is one statement while every queue is open; a paused queue closes the gate and the ordinary path honours the pause', async () => {
    await withTestDatabase(async (own) => {
      const sent: string[] = [];
      const pool = own.connect(2, { onQuery: (text) => sent.push(text) });
      for (const q of ['gate-a', 'gate-b']) for (let i = 0; i < 3; i++) await insertJob(own.sql, { queue: q, task: 'gate.t', priority: q === 'gate-a' ? 0 : 1 });
      const first = await jobClaim(pool, { queues: '*', tasks: ['gate.t'], limit: 2, leaseMs: LEASE });
      expect(first.map((c) => c.queue)).toEqual(['gate-a', 'gate-a']);
      expect(sent.filter((t) => t === CLAIM_TASKS_GATED_SQL)).toHaveLength(1);
      expect(sent.some((t) => t.includes('select name, paused'))).toBe(false);
      const listed = await jobClaim(pool, { queues: ['gate-a', 'gate-b'], tasks: ['gate.t'], limit: 1, leaseMs: LEASE });
      expect(listed.map((c) => c.queue)).toEqual(['gate-a']);
      expect(sent.filter((t) => t === CLAIM_LISTED_TASKS_GATED_SQL)).toHaveLength(1);
      await insertJob(own.sql, { queue: 'gate-a', task: 'gate.t', priority: -1 });
      await queueUpsert(own.sql, { name: 'gate-a' });
      await queuePause(own.sql, { name: 'gate-a' });
      const after = await jobClaim(pool, { queues: '*', tasks: ['gate.t'], limit: 10, leaseMs: LEASE });
      expect(after.map((c) => c.queue)).toEqual(['gate-b', 'gate-b', 'gate-b']);
      expect(await countByState(own.sql, 'gate-a')).toEqual({ running: 3, queued: 1 });
    });
  });

  it('a limited queue among `*` closes the gate, and the ordinary path holds its limit', async () => {
    await withTestDatabase(async (own) => {
      for (let i = 0; i < 4; i++) await insertJob(own.sql, { queue: 'race-a', task: 'race.t' });
      await queueUpsert(own.sql, { name: 'race-a', concurrencyLimit: 2 });
      const claimed = await jobClaim(own.sql, { queues: '*', tasks: ['race.t'], limit: 10, leaseMs: LEASE });
      expect(claimed).toHaveLength(2);
      expect(await countByState(own.sql, 'race-a')).toEqual({ running: 2, queued: 2 });
    });
  });

  it('on a backlog whose unknown task sorts first, the gated statements walk their range under generic plans', async () => {
    // Its own database: the paused and limited queues of the tests above would close the gate.
    await withTestDatabase(async (own) => {
      await own.sql`insert into jobs (queue, task, priority)
        select 'gtrap-' || (g % 4), case when g % 10 < 6 then 'gtrap.unknown' else 'gtrap.known' end,
               (case when g % 10 < 6 then 0 else 1 end)::smallint
          from generate_series(1, 50000) g`;
      await own.sql`analyze jobs`;
      for (const generic of [false, true]) {
        expect(await scanned(own.sql, CLAIM_TASKS_GATED_SQL, [['gtrap.known', 'gtrap.absent'], 100, LEASE], { generic })).toEqual([
          { index: 'jobs_task_claim_idx', rows: 50, removed: 0 },
        ]);
        const listed = await scanned(own.sql, CLAIM_LISTED_TASKS_GATED_SQL, [['gtrap-1', 'gtrap-2'], ['gtrap.known'], 100, LEASE], { generic });
        expect(listed.map((s) => s.index)).toEqual(['jobs_task_claim_idx']);
        expect(listed[0]!.removed).toBeLessThan(1_000);
        expect(await scanned(own.sql, CLAIM_LISTED_GATED_SQL, [['gtrap-1', 'gtrap-absent'], 100, LEASE], { generic })).toEqual([
          { index: 'jobs_queue_claim_idx', rows: 50, removed: 0 },
        ]);
      }
      // With a paused queue the gate is closed: nothing is walked at all.
      await queueUpsert(own.sql, { name: 'gtrap-paused' });
      await queuePause(own.sql, { name: 'gtrap-paused' });
      expect(await own.sql.unsafe(CLAIM_TASKS_GATED_SQL, [['gtrap.known'], 100, LEASE])).toHaveLength(0);
    });
  });
});
