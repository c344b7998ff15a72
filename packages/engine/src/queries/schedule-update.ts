import { notFound } from '@pgdispatch/core/errors';
import { parseCron, type Schedule } from '@pgdispatch/core/schedule';
import type { Exec } from '../db.js';
import { inTx } from '../db.js';
import { pg } from '../pg-errors.js';
import { checkScheduleFields, SCHEDULE_COLUMNS, type ScheduleFields } from './schedule-columns.js';

export type SchedulePatch = Partial<ScheduleFields>;

/**
 * Changes the given fields; fields left out keep their value. Under the row lock (so a tick in
 * flight finishes first). A new cron or time zone, and enabling a disabled schedule, restart the
 * schedule from the database's now(): ticks of the old expression, or of the paused time, are not
 * caught up. `not_found` for an unknown name.
 */
export async function scheduleUpdate(exec: Exec, params: { name: string; patch: SchedulePatch; maxPayloadBytes?: number }): Promise<Schedule> {
  const { name, patch } = params;
  const payload = checkScheduleFields(patch, params.maxPayloadBytes ?? 262_144);
  return inTx(exec, async (tx) => {
    const [cur] = await pg(tx.unsafe<(Schedule & { now: Date })[]>(`select ${SCHEDULE_COLUMNS}, now() as now from schedules where name = $1 for update`, [name] as never[]));
    if (!cur) throw notFound('schedule', name);
    const cron = patch.cron?.trim() ?? cur.cron;
    const timeZone = patch.timeZone ?? cur.timeZone;
    // The merged expression and zone must work together (a patch may change only one of them).
    checkScheduleFields({ cron, timeZone }, Number.MAX_SAFE_INTEGER);
    const enabled = patch.enabled ?? cur.enabled;
    const restart = cron !== cur.cron || timeZone !== cur.timeZone || (enabled && !cur.enabled);
    const nextRunAt = restart ? parseCron(cron, timeZone).next(cur.now) : cur.nextRunAt;
    const [row] = await pg(tx.unsafe<Schedule[]>(
      `update schedules set cron = $2, time_zone = $3, queue = $4, task = $5, payload = coalesce($6::text::jsonb, payload), priority = $7,
              max_attempts = $8, enabled = $9, catch_up = $10, next_run_at = $11, updated_at = now()
        where name = $1
        returning ${SCHEDULE_COLUMNS}`,
      [name, cron, timeZone, patch.queue ?? cur.queue, patch.task ?? cur.task, payload ?? null, patch.priority ?? cur.priority,
        patch.maxAttempts === undefined ? cur.maxAttempts : patch.maxAttempts, enabled, patch.catchUp ?? cur.catchUp, nextRunAt] as never[],
    ));
    return row as Schedule;
  });
}
