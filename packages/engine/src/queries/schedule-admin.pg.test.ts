import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../testing/database.js';
import { scheduleCreate } from './schedule-create.js';
import { scheduleDelete } from './schedule-delete.js';
import { scheduleGet } from './schedule-get.js';
import { scheduleList } from './schedule-list.js';
import { scheduleUpdate } from './schedule-update.js';

const db = useTestDatabase();
const base = { cron: '0 3 * * *', queue: 'reports', task: 'report.daily' };

describe('schedule admin', () => {
  it('creates a schedule whose first tick is the first one after the database now', async () => {
    const s = await scheduleCreate(db.sql, { name: 'nightly', ...base, timeZone: 'Europe/Berlin', payload: { kind: 'full' } });
    expect(s).toMatchObject({ name: 'nightly', cron: '0 3 * * *', timeZone: 'Europe/Berlin', queue: 'reports', task: 'report.daily', payload: { kind: 'full' },
      priority: 0, maxAttempts: null, enabled: true, catchUp: 'latest', lastTickAt: null, lastJobId: null });
    const [{ now }] = (await db.sql<{ now: Date }[]>`select now() as now`) as [{ now: Date }];
    expect(s.nextRunAt.getTime()).toBeGreaterThan(now.getTime() - 5_000);
    expect(s.nextRunAt.getTime()).toBeLessThanOrEqual(now.getTime() + 86_400_000);
    // 03:00 in Berlin is 01:00 or 02:00 UTC depending on DST.
    expect([1, 2]).toContain(s.nextRunAt.getUTCHours());
    expect(s.nextRunAt.getUTCMinutes()).toBe(0);
  });

  it('a second schedule of the same name is a conflict and changes nothing', async () => {
    await scheduleCreate(db.sql, { name: 'twice', ...base });
    await expect(scheduleCreate(db.sql, { name: 'twice', ...base, task: 'other' })).rejects.toMatchObject({ code: 'conflict', details: { schedule: 'twice' } });
    expect((await scheduleGet(db.sql, { name: 'twice' })).task).toBe('report.daily');
  });

  it.each([
    ['a cron with 4 fields', { cron: '* * * *' }, 'cron'],
    ['a cron with 7 fields', { cron: '* * * * * * *' }, 'cron'],
    ['an out-of-range minute', { cron: '60 * * * *' }, 'cron'],
    ['a cron that never fires', { cron: '0 0 31 2 *' }, 'cron'],
    ['an unknown time zone', { timeZone: 'Europe/Atlantis' }, 'timeZone'],
    ['a bad queue name', { queue: 'Bad Queue' }, 'queue'],
    ['an empty task', { task: '' }, 'task'],
    ['a priority out of range', { priority: 40_000 }, 'priority'],
    ['zero max attempts', { maxAttempts: 0 }, 'maxAttempts'],
    ['an unknown catch-up policy', { catchUp: 'some' as 'all' }, 'catchUp'],
    ['a payload with NUL', { payload: { s: 'a\u0000b' } }, 'payload'],
    ['a bad name', { name: '../etc' }, 'name'],
  ])('rejects %s as invalid_request naming the field, without writing', async (_label, patch, field) => {
    await expect(scheduleCreate(db.sql, { name: 'rejected', ...base, ...patch })).rejects.toMatchObject({ code: 'invalid_request', details: [{ path: field }] });
    expect((await db.sql`select 1 from schedules where name in ('rejected', '../etc')`).length).toBe(0);
  });

  it('a payload over the limit is payload_too_large', async () => {
    await expect(scheduleCreate(db.sql, { name: 'big', ...base, payload: { s: 'x'.repeat(200) }, maxPayloadBytes: 100 })).rejects.toMatchObject({ code: 'payload_too_large' });
  });

  it('updates only the given fields; a new cron or zone restarts from now, a payload change does not', async () => {
    const s = await scheduleCreate(db.sql, { name: 'edit', ...base, priority: 3, maxAttempts: 2 });
    await db.sql`update schedules set next_run_at = '2020-01-01T00:00:00Z' where name = 'edit'`;
    const p = await scheduleUpdate(db.sql, { name: 'edit', patch: { payload: { v: 2 }, catchUp: 'all' } });
    expect(p).toMatchObject({ payload: { v: 2 }, catchUp: 'all', priority: 3, maxAttempts: 2, cron: base.cron });
    expect(p.nextRunAt.toISOString()).toBe('2020-01-01T00:00:00.000Z'); // bookkeeping untouched
    const c = await scheduleUpdate(db.sql, { name: 'edit', patch: { cron: '*/5 * * * *', maxAttempts: null } });
    expect(c.maxAttempts).toBeNull();
    expect(c.nextRunAt.getTime()).toBeGreaterThan(Date.parse('2020-01-02'));
    expect(c.nextRunAt.getUTCMinutes() % 5).toBe(0);
    expect(c.updatedAt.getTime()).toBeGreaterThanOrEqual(s.updatedAt.getTime());
  });

  it('a patch is validated together with the stored expression', async () => {
    await scheduleCreate(db.sql, { name: 'zone', ...base });
    await expect(scheduleUpdate(db.sql, { name: 'zone', patch: { timeZone: 'Nowhere/Land' } })).rejects.toMatchObject({ code: 'invalid_request', details: [{ path: 'timeZone' }] });
    await expect(scheduleUpdate(db.sql, { name: 'zone', patch: { cron: '1 2 3' } })).rejects.toMatchObject({ code: 'invalid_request', details: [{ path: 'cron' }] });
    expect((await scheduleGet(db.sql, { name: 'zone' })).timeZone).toBe('UTC');
  });

  it('pausing keeps the bookkeeping; resuming restarts from now (paused ticks are not caught up)', async () => {
    await scheduleCreate(db.sql, { name: 'pause-me', ...base, cron: '* * * * * *', catchUp: 'all' });
    expect((await scheduleUpdate(db.sql, { name: 'pause-me', patch: { enabled: false } })).enabled).toBe(false);
    await db.sql`update schedules set next_run_at = now() - interval '1 hour' where name = 'pause-me'`;
    const r = await scheduleUpdate(db.sql, { name: 'pause-me', patch: { enabled: true } });
    const [{ now }] = (await db.sql<{ now: Date }[]>`select now() as now`) as [{ now: Date }];
    expect(r.enabled).toBe(true);
    expect(r.nextRunAt.getTime()).toBeGreaterThan(now.getTime() - 5_000);
  });

  it('gets, lists by name (optionally by queue) and deletes; unknown names are not_found', async () => {
    await scheduleCreate(db.sql, { name: 'zz-last', ...base, queue: 'other' });
    await scheduleCreate(db.sql, { name: 'aa-first', ...base, queue: 'other' });
    expect((await scheduleList(db.sql, { queue: 'other' })).map((s) => s.name)).toEqual(['aa-first', 'zz-last']);
    const all = (await scheduleList(db.sql)).map((s) => s.name);
    expect(all).toEqual([...all].sort());
    expect((await scheduleDelete(db.sql, { name: 'aa-first' })).name).toBe('aa-first');
    expect((await scheduleList(db.sql, { queue: 'other' })).map((s) => s.name)).toEqual(['zz-last']);
    await expect(scheduleGet(db.sql, { name: 'aa-first' })).rejects.toMatchObject({ code: 'not_found' });
    await expect(scheduleDelete(db.sql, { name: 'aa-first' })).rejects.toMatchObject({ code: 'not_found' });
    await expect(scheduleUpdate(db.sql, { name: 'missing', patch: { enabled: false } })).rejects.toMatchObject({ code: 'not_found' });
  });
});
