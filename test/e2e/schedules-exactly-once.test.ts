import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scheduler } from '@pgdispatch/api/scheduler';
import { silentLogger } from '@pgdispatch/core/log';
import { scheduleCreate } from '@pgdispatch/engine/queries/schedule-create';
import { scheduleUpdate } from '@pgdispatch/engine/queries/schedule-update';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { spawnServer, waitFor, type ServerProcess } from '../helpers/processes.js';

// Exactly-once ticks across pods, counted by the database, not by the product: three scheduler
// loops in this process on separate connections plus two real `pgdispatch serve` processes in
// role api (one of them kill -9ed and restarted mid-run) share one database and three one-second
// schedules for ~30 ticks. A BEFORE INSERT trigger on jobs records every attempt to enqueue a
// tick's job, including the ones the idempotency index would swallow, so a double fire cannot
// hide behind the dedupe. Then every scheduler is stopped while ticks come due, and one api
// process started afterwards must apply each schedule's catch-up policy.
const TICKS = 30;

let db: TestDatabase;
const procs: ServerProcess[] = [];
const loops: Scheduler[] = [];

const apiEnv = (extra: Record<string, string> = {}) => ({
  DISPATCH_ROLE: 'api', DATABASE_URL: db.url, API_KEYS: 'admin-key-000001:admin', WORKER_KEYS: `${'w'.repeat(20)}:*`,
  SCHEDULER_INTERVAL_MS: '100', ...extra,
});

beforeAll(async () => {
  db = await createTestDatabase();
  await db.sql.unsafe(`
    create table tick_attempts (key text not null, at timestamptz not null default clock_timestamp());
    create function log_tick_attempt() returns trigger language plpgsql as $$
      begin
        if new.idempotency_key like 'schedule:%' then insert into tick_attempts (key) values (new.idempotency_key); end if;
        return new;
      end $$;
    create trigger log_tick_attempt before insert on jobs for each row execute function log_tick_attempt();`);
});
afterAll(async () => {
  await Promise.all(loops.map((l) => l.stop()));
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  await db?.drop();
});

/** Tick times (ISO) of a schedule's jobs, from the jobs table. */
async function jobTicks(name: string): Promise<string[]> {
  const rows = await db.sql<{ key: string }[]>`select idempotency_key as key from jobs where idempotency_key like ${`schedule:${name}:%`} order by 1`;
  return rows.map((r) => r.key.slice(`schedule:${name}:`.length));
}

describe('schedules fire exactly once across pods', () => {
  it(`three loops + two api processes (one kill -9ed and restarted), ${TICKS} one-second ticks: each tick enqueued once, none skipped`, async () => {
    const names = ['sec-all', 'sec-latest', 'sec-none'] as const;
    const firedBy = new Map<string, number>();
    for (let i = 0; i < 3; i++) {
      const loop = new Scheduler({
        sql: db.connect(2), intervalMs: 100, graceMs: 60_000, maxPayloadBytes: 262_144, log: silentLogger,
        onTick: (r) => firedBy.set(`loop${i + 1}`, (firedBy.get(`loop${i + 1}`) ?? 0) + r.fired.length),
      });
      loops.push(loop);
    }
    const [a, b] = await Promise.all([spawnServer(apiEnv()), spawnServer(apiEnv())]);
    procs.push(a!, b!);
    for (const l of loops) l.start();
    for (const [i, n] of names.entries()) {
      await scheduleCreate(db.sql, { name: n, cron: '* * * * * *', queue: 'ticks', task: 'noop', catchUp: (['all', 'latest', 'none'] as const)[i] });
    }
    const ticksOf = async () => (await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where idempotency_key like 'schedule:sec-all:%'`)[0]!.n;
    await waitFor(async () => (await ticksOf()) >= 10, { timeoutMs: 30_000, what: '10 ticks' });
    await a!.kill('SIGKILL');
    await waitFor(async () => (await ticksOf()) >= 15, { timeoutMs: 30_000, what: '15 ticks' });
    const a2 = await spawnServer(apiEnv());
    procs.push(a2);
    await waitFor(async () => (await ticksOf()) >= TICKS + 1, { timeoutMs: 60_000, what: `${TICKS + 1} ticks` });
    await Promise.all(loops.map((l) => l.stop()));
    await Promise.all([b!.kill('SIGTERM'), a2.kill('SIGTERM')]);
    for (const n of names) await scheduleUpdate(db.sql, { name: n, patch: { enabled: false } });

    const attempts = await db.sql<{ key: string; n: number }[]>`select key, count(*)::int as n from tick_attempts group by key having count(*) > 1`;
    const byLoops = [...firedBy.values()].reduce((s, n) => s + n, 0);
    let total = 0;
    for (const n of names) {
      const ticks = await jobTicks(n);
      const secs = ticks.map((t) => Date.parse(t) / 1000);
      const expected = secs.at(-1)! - secs[0]! + 1;
      total += ticks.length;
      console.log(`${n}: ticks expected ${expected} (every second from ${ticks[0]} to ${ticks.at(-1)}), jobs ${ticks.length}, distinct tick times ${new Set(ticks).size}`);
      expect(ticks.length).toBeGreaterThanOrEqual(TICKS);
      expect(secs).toEqual(Array.from({ length: expected }, (_, i) => secs[0]! + i));
    }
    const attemptRows = (await db.sql<{ n: number }[]>`select count(*)::int as n from tick_attempts`)[0]!.n;
    console.log(`enqueue attempts recorded by the trigger: ${attemptRows} for ${total} jobs; ticks fired per pod: ${[...firedBy].map(([k, v]) => `${k} ${v}`).join(', ')}, api processes ${total - byLoops}`);
    expect(attempts).toEqual([]);
    expect(attemptRows).toBe(total);
    // Every kind of pod took part: the row lock spread the work, it did not serialise one winner.
    expect(byLoops).toBeGreaterThan(0);
    expect(total - byLoops).toBeGreaterThan(0);
  }, 150_000);

  it('ticks that came due while every scheduler was down: all fires both, latest the newer, none neither', async () => {
    // Every scheduler is down (the previous test stops them; make sure if it failed half-way).
    await Promise.all(loops.map((l) => l.stop()));
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    // Two ticks a second apart, in the same minute, 3 and 4 seconds from now (6-field cron, UTC).
    let now = ((await db.sql<{ now: Date }[]>`select now() as now`)[0] as { now: Date }).now;
    if (now.getUTCSeconds() > 50) {
      await new Promise((r) => setTimeout(r, (61 - now.getUTCSeconds()) * 1000));
      now = ((await db.sql<{ now: Date }[]>`select now() as now`)[0] as { now: Date }).now;
    }
    const t1 = new Date(Math.floor(now.getTime() / 1000) * 1000 + 3000);
    const t2 = new Date(t1.getTime() + 1000);
    const cron = `${t1.getUTCSeconds()},${t2.getUTCSeconds()} ${t1.getUTCMinutes()} ${t1.getUTCHours()} ${t1.getUTCDate()} ${t1.getUTCMonth() + 1} *`;
    for (const p of ['all', 'latest', 'none'] as const) await scheduleCreate(db.sql, { name: `down-${p}`, cron, queue: 'ticks', task: 'noop', catchUp: p });
    // Wait until both ticks are older than the restarted pod's grace window (1 s) — with nobody running.
    await waitFor(async () => ((await db.sql<{ ok: boolean }[]>`select now() > ${t2}::timestamptz + interval '2 seconds' as ok`)[0]!.ok), { timeoutMs: 20_000, intervalMs: 250 });
    expect((await db.sql`select 1 from jobs where idempotency_key like 'schedule:down-%'`).length).toBe(0);

    const p = await spawnServer(apiEnv({ SCHEDULER_GRACE_MS: '1000' }));
    procs.push(p);
    await waitFor(async () => {
      const rows = await db.sql<{ n: number }[]>`select count(*)::int as n from schedules where name like 'down-%' and next_run_at > ${t2}`;
      return rows[0]!.n === 3;
    }, { timeoutMs: 30_000, what: 'the restarted pod to handle the missed ticks' });
    await p.kill('SIGTERM');
    const all = await jobTicks('down-all');
    const latest = await jobTicks('down-latest');
    const none = await jobTicks('down-none');
    console.log(`missed while down: ${t1.toISOString()}, ${t2.toISOString()} → all fired ${all.length} [${all.join(', ')}], latest ${latest.length} [${latest.join(', ')}], none ${none.length}`);
    expect(all).toEqual([t1.toISOString(), t2.toISOString()]);
    expect(latest).toEqual([t2.toISOString()]);
    expect(none).toEqual([]);
    // Each moved on to next year's first tick.
    const next = await db.sql<{ next: Date }[]>`select next_run_at as next from schedules where name like 'down-%'`;
    for (const r of next) expect(r.next.toISOString()).toBe(new Date(Date.UTC(t1.getUTCFullYear() + 1, t1.getUTCMonth(), t1.getUTCDate(), t1.getUTCHours(), t1.getUTCMinutes(), t1.getUTCSeconds())).toISOString());
  }, 90_000);
});
