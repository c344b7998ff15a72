import { DispatchError } from '@pgdispatch/core/errors';
import { parseCron, type Schedule } from '@pgdispatch/core/schedule';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';
import { checkScheduleFields, SCHEDULE_COLUMNS, type ScheduleFields } from './schedule-columns.js';

/**
 * Creates a schedule; its first tick is the first one strictly after the database's now().
 * A name that exists is `conflict` (409). Validation as `checkScheduleFields`.
 */
export async function scheduleCreate(exec: Exec, params: { name: string } & ScheduleFields & { maxPayloadBytes?: number }): Promise<Schedule> {
  const payload = checkScheduleFields({ ...params, payload: params.payload ?? {} }, params.maxPayloadBytes ?? 262_144) ?? '{}';
  const timeZone = params.timeZone ?? 'UTC';
  const [clock] = await pg(exec<{ now: Date }[]>`select now() as now`);
  const nextRunAt = parseCron(params.cron, timeZone).next(clock!.now);
  const [row] = await pg(exec.unsafe<Schedule[]>(
    `insert into schedules (name, cron, time_zone, queue, task, payload, priority, max_attempts, enabled, catch_up, next_run_at)
     values ($1, $2, $3, $4, $5, $6::text::jsonb, $7, $8, $9, $10, $11)
     on conflict (name) do nothing
     returning ${SCHEDULE_COLUMNS}`,
    [params.name, params.cron.trim(), timeZone, params.queue, params.task, payload, params.priority ?? 0, params.maxAttempts ?? null,
      params.enabled ?? true, params.catchUp ?? 'latest', nextRunAt] as never[],
  ));
  if (!row) throw new DispatchError('conflict', `schedule ${params.name} already exists`, { details: { schedule: params.name } });
  return row;
}
