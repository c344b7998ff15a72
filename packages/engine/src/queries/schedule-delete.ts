import { notFound } from '@pgdispatch/core/errors';
import type { Schedule } from '@pgdispatch/core/schedule';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';
import { SCHEDULE_COLUMNS } from './schedule-columns.js';

/**
 * Deletes a schedule and returns it; jobs it already enqueued stay. A scheduler holding the row
 * lock finishes its tick first (the delete waits for the lock), so a tick is never half-fired.
 */
export async function scheduleDelete(exec: Exec, params: { name: string }): Promise<Schedule> {
  const [row] = await pg(exec.unsafe<Schedule[]>(`delete from schedules where name = $1 returning ${SCHEDULE_COLUMNS}`, [params.name] as never[]));
  if (!row) throw notFound('schedule', params.name);
  return row;
}
