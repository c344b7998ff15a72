import { jobGet } from '@pgdispatch/engine/queries/job-admin';
import { useTestDatabase } from '@pgdispatch/engine/testing/database';
import { insertJob } from '@pgdispatch/engine/testing/factories';
import { silentLogger } from '@pgdispatch/core/log';
import { afterEach, describe, expect, it } from 'vitest';
import { Dispatcher } from './dispatcher.js';

const db = useTestDatabase();
let dispatcher: Dispatcher | undefined;
afterEach(async () => {
  await dispatcher?.stop();
  dispatcher = undefined;
});

function start(rounds: { claimed: number; demand: number }[]) {
  dispatcher = new Dispatcher({
    sql: db.sql,
    leaseMs: 30_000,
    batchMax: 500,
    pollIntervalMs: 60_000,
    log: silentLogger,
    onClaimRound: (claimed, demand) => rounds.push({ claimed, demand }),
  });
  return dispatcher;
}

describe('dispatcher task routing', () => {
  it('workers sharing a task set are served by one claim; another task set gets its own', async () => {
    for (let i = 0; i < 6; i++) await insertJob(db.sql, { queue: 'route-d', task: 'route.a' });
    for (let i = 0; i < 2; i++) await insertJob(db.sql, { queue: 'route-d', task: 'route.b' });
    const rounds: { claimed: number; demand: number }[] = [];
    const d = start(rounds);
    // Same tasks in another order: the same group.
    const same = [d.request({ queues: ['route-d'], tasks: ['route.a', 'route.x'], max: 3, waitMs: 2_000 }), d.request({ queues: ['route-d'], tasks: ['route.x', 'route.a'], max: 3, waitMs: 2_000 })];
    const other = d.request({ queues: ['route-d'], tasks: ['route.b'], max: 5, waitMs: 2_000 });
    const [a1, a2] = await Promise.all(same);
    const b = await other;
    expect([...a1!, ...a2!].map((j) => j.task)).toEqual(Array(6).fill('route.a'));
    expect(b.map((j) => j.task)).toEqual(['route.b', 'route.b']);
    // One claim for the two route.a waiters (demand 3 + 3), one for the route.b waiter.
    expect(rounds.sort((x, y) => x.demand - y.demand)).toEqual([{ claimed: 2, demand: 5 }, { claimed: 6, demand: 6 }]);
  });

  it('a waiter that declares no matching task gets nothing, and the jobs stay queued', async () => {
    const job = await insertJob(db.sql, { queue: 'route-e', task: 'route.only-new' });
    const d = start([]);
    expect(await d.request({ queues: '*', tasks: ['route.old'], max: 5, waitMs: 300 })).toEqual([]);
    expect(await jobGet(db.sql, { id: job.id })).toMatchObject({ state: 'queued', attempt: 0 });
    // A waiter without a task list (an old worker) still gets any task.
    expect((await d.request({ queues: ['route-e'], max: 5, waitMs: 2_000 })).map((j) => j.id)).toEqual([job.id]);
  });
});
