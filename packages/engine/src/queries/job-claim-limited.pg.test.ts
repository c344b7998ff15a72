import { describe, expect, it } from 'vitest';
import { isDispatchError } from '@pgdispatch/core/errors';
import { useTestDatabase } from '../testing/database.js';
import { countByState, insertJob } from '../testing/factories.js';
import { scanned } from '../testing/plans.js';
import { CLAIM_LIMITED_SQL, CLAIM_LIMITED_TASKS_SQL, jobClaim } from './job-claim.js';
import { queuePause, queueUpsert } from './queue-admin.js';

// The claim of a queue with a concurrency limit: BEGIN, the queue row lock, the claim (which counts
// the free slots itself) and COMMIT pipelined in one round trip (job-claim.ts, claimCounted).
const db = useTestDatabase();
const LEASE = 30_000;

describe('the limited claim statement counts the free slots itself', () => {
  it('takes the limit minus the running jobs, nothing from a paused queue, and $1 once the limit is gone', async () => {
    await queueUpsert(db.sql, { name: 'slots-3', concurrencyLimit: 3 });
    await insertJob(db.sql, { queue: 'slots-3', state: 'running', leaseMs: LEASE });
    for (let i = 0; i < 6; i++) await insertJob(db.sql, { queue: 'slots-3' });
    // Asked for 5 (locks at most 5 rows), two slots are free.
    expect(await db.sql.unsafe(CLAIM_LIMITED_SQL, [5, LEASE, 'slots-3'])).toHaveLength(2);
    expect(await db.sql.unsafe(CLAIM_LIMITED_SQL, [5, LEASE, 'slots-3'])).toHaveLength(0);
    expect(await countByState(db.sql, 'slots-3')).toEqual({ running: 3, queued: 4 });
    await queueUpsert(db.sql, { name: 'slots-3', concurrencyLimit: 4 });
    await queuePause(db.sql, { name: 'slots-3' });
    expect(await db.sql.unsafe(CLAIM_LIMITED_SQL, [5, LEASE, 'slots-3'])).toHaveLength(0);
    expect(await db.sql.unsafe(CLAIM_LIMITED_TASKS_SQL, [5, LEASE, 'slots-3', ['t']])).toHaveLength(0);
    // The limit removed between the caller's policy read and its lock: $1 is all it takes.
    await queueUpsert(db.sql, { name: 'slots-3', concurrencyLimit: null });
    await db.sql`update queues set paused = false where name = 'slots-3'`;
    expect(await db.sql.unsafe(CLAIM_LIMITED_SQL, [2, LEASE, 'slots-3'])).toHaveLength(2);
    // A queue that does not exist has no slots.
    expect(await db.sql.unsafe(CLAIM_LIMITED_SQL, [2, LEASE, 'no-such-queue'])).toHaveLength(0);
  });

  it('on a limited queue whose unknown task sorts first, custom and generic plans walk their range and filter no unknown job', async () => {
    await queueUpsert(db.sql, { name: 'ltrap', concurrencyLimit: 50 });
    await db.sql`insert into jobs (queue, task, priority)
      select case when g % 7 = 0 then 'ltrap-other' else 'ltrap' end,
             case when g % 10 < 6 then 'ltrap.unknown' else 'ltrap.known' end,
             (case when g % 10 < 6 then 0 else 1 end)::smallint
        from generate_series(1, 50000) g`;
    await db.sql`analyze jobs`;
    const claimScans = (s: { index: string }[]) => s.filter((x) => x.index !== 'jobs_running_idx');
    for (const generic of [false, true]) {
      const tasks = claimScans(await scanned(db.sql, CLAIM_LIMITED_TASKS_SQL, [50, LEASE, 'ltrap', ['ltrap.known', 'ltrap.absent']], { generic }));
      expect(tasks.map((s) => s.index)).toEqual(['jobs_task_claim_idx']);
      // Only the known task's jobs of the other queue are filtered (1 in 7), never the 30,000 unknown ones.
      expect(tasks[0]!.removed).toBeLessThan(100);
      const all = claimScans(await scanned(db.sql, CLAIM_LIMITED_SQL, [50, LEASE, 'ltrap'], { generic }));
      expect(all).toEqual([{ index: 'jobs_queue_claim_idx', rows: 50, removed: 0 }]);
    }
    const claimed = await jobClaim(db.sql, { queues: ['ltrap'], tasks: ['ltrap.known'], limit: 500, leaseMs: LEASE });
    expect(claimed).toHaveLength(50);
    expect(new Set(claimed.map((c) => c.task))).toEqual(new Set(['ltrap.known']));
    await db.sql`delete from jobs where queue in ('ltrap', 'ltrap-other')`;
  });
});

describe('the pipelined limited claim', () => {
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
