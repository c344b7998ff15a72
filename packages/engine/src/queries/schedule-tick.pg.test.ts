import { describe, expect, it } from 'vitest';
import { CATCH_UP_MAX_TICKS, type CatchUpPolicy } from '@pgdispatch/core/schedule';
import { useTestDatabase } from '../testing/database.js';
import { holdTransaction } from '../testing/locks.js';
import { scheduleCreate } from './schedule-create.js';
import { scheduleTick } from './schedule-tick.js';

const db = useTestDatabase();

/** Tick times of the jobs a schedule enqueued, read from the jobs table by idempotency key. */
async function firedTicks(name: string): Promise<string[]> {
  const rows = await db.sql<{ key: string }[]>`
    select idempotency_key as key from jobs where idempotency_key like ${`schedule:${name}:%`} order by idempotency_key`;
  return rows.map((r) => r.key.slice(`schedule:${name}:`.length));
}

/** Creates a schedule, then moves its bookkeeping back to `from`, as if every scheduler had been down since. */
async function dueSince(name: string, from: string, opts: { cron: string; catchUp?: CatchUpPolicy; timeZone?: string }): Promise<void> {
  await scheduleCreate(db.sql, { name, queue: 'ticks', task: 'noop', ...opts });
  await db.sql`update schedules set next_run_at = ${from} where name = ${name}`;
}

/** Ticks every schedule that is due until nothing is (one transaction per claim). */
async function drain(graceMs: number) {
  const out = [];
  for (let r = await scheduleTick(db.sql, { graceMs }); r; r = await scheduleTick(db.sql, { graceMs })) out.push(r);
  return out;
}

const dbNow = async () => ((await db.sql<{ now: Date }[]>`select now() as now`)[0] as { now: Date }).now;

/** First days of months from January 2025 up to now, computed by hand (not by the cron library). */
function monthStartsSince2025(now: Date): string[] {
  const out: string[] = [];
  for (let y = 2025, m = 0; Date.UTC(y, m, 1) <= now.getTime(); m === 11 ? ((m = 0), y++) : m++) out.push(new Date(Date.UTC(y, m, 1)).toISOString());
  return out;
}

describe('scheduleTick: ticks missed while every scheduler was down follow the catch-up policy', () => {
  it('all / latest / none on a monthly schedule missed since January 2025', async () => {
    for (const p of ['all', 'latest', 'none'] as const) await dueSince(`monthly-${p}`, '2025-01-01T00:00:00Z', { cron: '0 0 1 * *', catchUp: p });
    const results = await drain(0);
    const expected = monthStartsSince2025(await dbNow());
    expect(expected.length).toBeGreaterThanOrEqual(23);
    expect(await firedTicks('monthly-all')).toEqual(expected);
    expect(await firedTicks('monthly-latest')).toEqual([expected.at(-1)]);
    expect(await firedTicks('monthly-none')).toEqual([]);
    const by = Object.fromEntries(results.map((r) => [r.schedule, r]));
    expect(by['monthly-all']!.fired.every((f) => f.late && f.created)).toBe(true);
    expect(by['monthly-latest']!.skipped).toBe(expected.length - 1);
    expect(by['monthly-none']!.skipped).toBe(expected.length);
    // Every policy moves the schedule past now: the next month's first day.
    const rows = await db.sql<{ name: string; next: Date; last: Date | null }[]>`select name, next_run_at as next, last_tick_at as last from schedules where name like 'monthly-%'`;
    for (const r of rows) expect(r.next.getUTCDate()).toBe(1);
    for (const r of rows) expect(r.next.getTime()).toBeGreaterThan(Date.parse(expected.at(-1)!));
    expect(rows.find((r) => r.name === 'monthly-none')!.last).toBeNull();
    // Nothing is due any more.
    expect(await scheduleTick(db.sql, { graceMs: 0 })).toBeNull();
  });

  it(`all is bounded: a daily schedule missed for more than ${CATCH_UP_MAX_TICKS} days fires the newest ${CATCH_UP_MAX_TICKS}`, async () => {
    await dueSince('daily-all', '2025-01-01T00:00:00Z', { cron: '0 0 * * *', catchUp: 'all' });
    const [r] = await drain(0);
    const ticks = await firedTicks('daily-all');
    expect(ticks).toHaveLength(CATCH_UP_MAX_TICKS);
    const now = await dbNow();
    const todayMidnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    expect(ticks.at(-1)).toBe(new Date(todayMidnight).toISOString());
    const days = (todayMidnight - Date.parse('2025-01-01')) / 86_400_000 + 1;
    expect(r!.skipped).toBe(Math.min(days - CATCH_UP_MAX_TICKS, 1000));
  });

  it('ticks within the grace window are on time and fire whatever the policy', async () => {
    await scheduleCreate(db.sql, { name: 'secondly-none', queue: 'ticks', task: 'noop', cron: '* * * * * *', catchUp: 'none' });
    await db.sql`update schedules set next_run_at = date_trunc('second', now()) - interval '3 seconds' where name = 'secondly-none'`;
    const [r] = await drain(60_000);
    expect(r!.fired.length).toBeGreaterThanOrEqual(4);
    expect(r!.fired.every((f) => !f.late)).toBe(true);
    const secs = (await firedTicks('secondly-none')).map((t) => Date.parse(t) / 1000);
    expect(secs).toEqual(secs.map((_, i) => secs[0]! + i)); // contiguous seconds
  });
});

describe('scheduleTick: DST on the database path', () => {
  it('Europe/Berlin 2026: 02:30 fires once on 29 March (at 03:00 CEST) and once on 25 October (CEST)', async () => {
    await dueSince('berlin', '2026-01-01T00:00:00Z', { cron: '30 2 24-30 3,10 *', timeZone: 'Europe/Berlin', catchUp: 'all' });
    await drain(0);
    const ticks = (await firedTicks('berlin')).filter((t) => t.startsWith('2026-03-') || t.startsWith('2026-10-'));
    expect(ticks.filter((t) => t.startsWith('2026-03-28') || t.startsWith('2026-03-29') || t.startsWith('2026-03-30'))).toEqual([
      '2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z',
    ]);
    expect(ticks.filter((t) => t.startsWith('2026-10-24') || t.startsWith('2026-10-25') || t.startsWith('2026-10-26'))).toEqual([
      '2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z',
    ]);
  });

  it('America/New_York 2026: 02:30 on 8 March fires at 03:00 EDT; 01:30 on 1 November fires once (EDT)', async () => {
    await dueSince('new-york', '2026-01-01T00:00:00Z', { cron: '30 1,2 1,8 3,11 *', timeZone: 'America/New_York', catchUp: 'all' });
    await drain(0);
    expect((await firedTicks('new-york')).filter((t) => t.startsWith('2026-'))).toEqual([
      '2026-03-01T06:30:00.000Z', '2026-03-01T07:30:00.000Z', // EST
      '2026-03-08T06:30:00.000Z', '2026-03-08T07:00:00.000Z', // 02:30 does not exist: 03:00 EDT
      '2026-11-01T05:30:00.000Z', '2026-11-01T07:30:00.000Z', // 01:30 EDT once; 02:30 EST
      '2026-11-08T06:30:00.000Z', '2026-11-08T07:30:00.000Z',
    ]);
  });
});

describe('scheduleTick: exactly once', () => {
  it('ten claimers on ten connections at once: one fires the due ticks, the others find nothing', async () => {
    await dueSince('contended', '2026-01-01T00:00:00Z', { cron: '0 0 * * MON', catchUp: 'all' });
    const pools = Array.from({ length: 10 }, () => db.connect(1));
    const results = await Promise.all(pools.map((p) => scheduleTick(p, { graceMs: 0 })));
    const winners = results.filter((r) => r?.schedule === 'contended');
    expect(winners).toHaveLength(1);
    const ticks = await firedTicks('contended');
    expect(ticks.length).toBe(winners[0]!.fired.length);
    expect(new Set(ticks).size).toBe(ticks.length);
    expect((await db.sql`select count(*)::int as n from jobs where idempotency_key like 'schedule:contended:%'`)[0]!.n).toBe(ticks.length);
  });

  it('a schedule whose row another scheduler holds is skipped, not waited for', async () => {
    await dueSince('held', '2026-01-01T00:00:00Z', { cron: '0 0 1 1 *', catchUp: 'all' });
    const holder = await holdTransaction(db.connect(1), "select 1 from schedules where name = 'held' for update");
    const other = db.connect(1);
    const r = await scheduleTick(other, { graceMs: 0, exclude: ['contended'] });
    expect(r?.schedule).not.toBe('held');
    holder.release();
    await holder.done;
    expect((await scheduleTick(other, { graceMs: 0 }))?.schedule).toBe('held');
  });

  it('a claim that rolls back (a crash before commit) leaves the tick due; the next claim fires it', async () => {
    await dueSince('crashy', '2026-06-01T00:00:00Z', { cron: '0 0 1 6 *', catchUp: 'all' });
    await expect(db.sql.begin(async (tx) => {
      const r = await scheduleTick(tx, { graceMs: 0 });
      expect(r?.schedule).toBe('crashy');
      throw new Error('crash');
    })).rejects.toThrow('crash');
    expect(await firedTicks('crashy')).toEqual([]);
    expect((await scheduleTick(db.sql, { graceMs: 0 }))?.schedule).toBe('crashy');
    expect(await firedTicks('crashy')).toEqual(['2026-06-01T00:00:00.000Z']);
  });

  it('a tick whose job already exists (same key) is not enqueued twice', async () => {
    await dueSince('dup', '2026-02-01T00:00:00Z', { cron: '0 0 1 2 *', catchUp: 'all' });
    await db.sql`insert into jobs (queue, task, idempotency_key) values ('ticks', 'noop', 'schedule:dup:2026-02-01T00:00:00.000Z')`;
    const r = await scheduleTick(db.sql, { graceMs: 0 });
    expect(r?.fired).toMatchObject([{ created: false }]);
    expect(await firedTicks('dup')).toEqual(['2026-02-01T00:00:00.000Z']);
  });

  it('an enqueue that fails names its schedule; excluding it lets the others go on', async () => {
    await dueSince('too-big', '2026-03-01T00:00:00Z', { cron: '0 0 1 3 *', catchUp: 'all' });
    await db.sql`update schedules set payload = ${db.sql.json({ s: 'x'.repeat(500) })} where name = 'too-big'`;
    await dueSince('fine', '2026-03-01T00:00:00Z', { cron: '0 0 2 3 *', catchUp: 'all' });
    await expect(scheduleTick(db.sql, { graceMs: 0, maxPayloadBytes: 100 })).rejects.toMatchObject({ code: 'payload_too_large', details: { schedule: 'too-big' } });
    expect((await scheduleTick(db.sql, { graceMs: 0, maxPayloadBytes: 100, exclude: ['too-big'] }))?.schedule).toBe('fine');
    expect(await firedTicks('too-big')).toEqual([]);
  });
});
