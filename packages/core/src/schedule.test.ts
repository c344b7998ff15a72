import { describe, expect, it } from 'vitest';
import { CATCH_UP_MAX_TICKS, cronProblem, parseCron, planTicks } from './schedule.js';

const iso = (d: Date | null) => d?.toISOString() ?? null;
/** The first `n` ticks strictly after `from`. */
function ticks(expr: string, tz: string, from: string, n: number): string[] {
  const c = parseCron(expr, tz);
  const out: string[] = [];
  let t: Date | null = new Date(from);
  for (let i = 0; i < n && t; i++) {
    t = c.next(t);
    if (t) out.push(t.toISOString());
  }
  return out;
}

describe('cron validation', () => {
  it.each([
    ['* * * * *', 'UTC'],
    ['*/5 * * * * *', 'Europe/Berlin'],
    ['0 30 2 * * MON-FRI', 'America/New_York'],
  ])('accepts %s in %s', (expr, tz) => expect(cronProblem(expr, tz)).toBeUndefined());

  it.each([
    ['* * * *', 'UTC', 'cron', /5 fields .* or 6/],
    ['* * * * * * *', 'UTC', 'cron', /not 7/],
    ['61 * * * *', 'UTC', 'cron', /minute/],
    ['0 0 30 2 *', 'UTC', 'cron', /never fires/],
    ['hello world a b c', 'UTC', 'cron', /./],
    ['* * * * *', 'Mars/Olympus_Mons', 'timeZone', /unknown time zone/],
    ['* * * * *', '', 'timeZone', /IANA/],
  ])('rejects %s in %j with a message about %s', (expr, tz, field, message) => {
    const p = cronProblem(expr, tz);
    expect(p?.field).toBe(field);
    expect(p?.message).toMatch(message);
  });
});

describe('DST: a skipped local time fires once, a repeated one once', () => {
  it('Europe/Berlin 2026-03-29: 02:30 does not exist; it fires once, at 03:00 CEST', () => {
    expect(ticks('30 2 * * *', 'Europe/Berlin', '2026-03-28T12:00:00Z', 3)).toEqual([
      '2026-03-29T01:00:00.000Z', // 03:00 CEST, the first valid time after the gap
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
      '2026-03-31T00:30:00.000Z',
    ]);
  });

  it('Europe/Berlin 2026-10-25: 02:30 occurs twice; it fires once, at the first occurrence (CEST)', () => {
    expect(ticks('30 2 * * *', 'Europe/Berlin', '2026-10-24T12:00:00Z', 3)).toEqual([
      '2026-10-25T00:30:00.000Z', // 02:30 CEST; 02:30 CET (01:30Z) does not fire
      '2026-10-26T01:30:00.000Z', // 02:30 CET
      '2026-10-27T01:30:00.000Z',
    ]);
  });

  it('America/New_York 2026-03-08 and 2026-11-01: same rules', () => {
    expect(ticks('30 2 * * *', 'America/New_York', '2026-03-07T12:00:00Z', 2)).toEqual(['2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z']);
    expect(ticks('30 1 * * *', 'America/New_York', '2026-10-31T12:00:00Z', 2)).toEqual(['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']);
  });

  it('a list of fixed times counts as fixed times (Vixie cron): 02:30 fires once on the fall-back day', () => {
    const berlin = ticks('30 2,14 * * *', 'Europe/Berlin', '2026-10-24T23:00:00Z', 2);
    expect(berlin).toEqual(['2026-10-25T00:30:00.000Z', '2026-10-25T13:30:00.000Z']);
  });

  it('an interval expression keeps its real-time cadence through the repeated hour', () => {
    // 02:00 and 02:30 local happen twice; every half hour of real time fires once.
    expect(ticks('*/30 * * * *', 'Europe/Berlin', '2026-10-24T23:45:00Z', 5)).toEqual([
      '2026-10-25T00:00:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T01:30:00.000Z', '2026-10-25T02:00:00.000Z',
    ]);
  });

  it('every second across the spring-forward instant: no duplicate, no gap in real time', () => {
    const out = ticks('* * * * * *', 'Europe/Berlin', '2026-03-29T00:59:57Z', 6);
    expect(out).toEqual(['58', '59', '00', '01', '02', '03'].map((s, i) => `2026-03-29T0${i < 2 ? 0 : 1}:${i < 2 ? 59 : '00'}:${s}.000Z`));
  });
});

describe('planTicks', () => {
  const every = (expr: string) => parseCron(expr, 'UTC');
  const at = (s: string) => new Date(s);

  it('fires every on-time tick, oldest first, and moves nextRunAt past now', () => {
    const plan = planTicks({ cron: every('* * * * * *'), nextRunAt: at('2026-01-01T00:00:01Z'), now: at('2026-01-01T00:00:03.400Z'), graceMs: 60_000, policy: 'none' });
    expect(plan.fire.map((f) => [iso(f.at), f.late])).toEqual([
      ['2026-01-01T00:00:01.000Z', false], ['2026-01-01T00:00:02.000Z', false], ['2026-01-01T00:00:03.000Z', false],
    ]);
    expect(plan.skipped).toBe(0);
    expect(iso(plan.nextRunAt)).toBe('2026-01-01T00:00:04.000Z');
  });

  it('a tick exactly at now is due', () => {
    const plan = planTicks({ cron: every('0 * * * *'), nextRunAt: at('2026-01-01T01:00:00Z'), now: at('2026-01-01T01:00:00Z'), graceMs: 1000, policy: 'none' });
    expect(plan.fire.map((f) => iso(f.at))).toEqual(['2026-01-01T01:00:00.000Z']);
  });

  // Hourly ticks 01:00 … 05:00 missed (grace 1 minute, now 05:30): nothing is on time.
  const missed = (policy: 'all' | 'latest' | 'none') =>
    planTicks({ cron: every('0 * * * *'), nextRunAt: at('2026-01-01T01:00:00Z'), now: at('2026-01-01T05:30:00Z'), graceMs: 60_000, policy });

  it('catch-up all: every missed tick, marked late', () => {
    const plan = missed('all');
    expect(plan.fire.map((f) => [iso(f.at), f.late])).toEqual([1, 2, 3, 4, 5].map((h) => [`2026-01-01T0${h}:00:00.000Z`, true]));
    expect(plan.skipped).toBe(0);
    expect(iso(plan.nextRunAt)).toBe('2026-01-01T06:00:00.000Z');
  });

  it('catch-up latest: only the newest missed tick', () => {
    const plan = missed('latest');
    expect(plan.fire.map((f) => [iso(f.at), f.late])).toEqual([['2026-01-01T05:00:00.000Z', true]]);
    expect(plan.skipped).toBe(4);
  });

  it('catch-up none: nothing missed fires', () => {
    const plan = missed('none');
    expect(plan.fire).toEqual([]);
    expect(plan.skipped).toBe(5);
    expect(iso(plan.nextRunAt)).toBe('2026-01-01T06:00:00.000Z');
  });

  it('catch-up latest fires nothing late when an on-time tick fires', () => {
    const plan = planTicks({ cron: every('*/10 * * * * *'), nextRunAt: at('2026-01-01T00:00:00Z'), now: at('2026-01-01T00:01:05Z'), graceMs: 20_000, policy: 'latest' });
    expect(plan.fire.map((f) => [iso(f.at), f.late])).toEqual([['2026-01-01T00:00:50.000Z', false], ['2026-01-01T00:01:00.000Z', false]]);
    expect(plan.skipped).toBe(5); // 00:00, 00:10 … 00:40
  });

  it(`catch-up all is bounded: the newest ${CATCH_UP_MAX_TICKS} missed ticks fire, older ones are skipped`, () => {
    const plan = planTicks({ cron: every('* * * * *'), nextRunAt: at('2026-01-01T00:00:00Z'), now: at('2026-01-01T10:00:00Z'), graceMs: 0, policy: 'all' });
    expect(plan.fire).toHaveLength(CATCH_UP_MAX_TICKS);
    expect(iso(plan.fire[0]!.at)).toBe('2026-01-01T08:21:00.000Z');
    expect(iso(plan.fire.at(-1)!.at)).toBe('2026-01-01T10:00:00.000Z');
    expect(plan.skipped).toBe(600 + 1 - CATCH_UP_MAX_TICKS);
  });
});
