import { notFound } from '@pgdispatch/core/errors';
import type { Schedule } from '@pgdispatch/core/schedule';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';
import { SCHEDULE_COLUMNS } from './schedule-columns.js';

/** One schedule by name; `not_found` otherwise. */
export async function scheduleGet(exec: Exec, params: { name: string }): Promise<Schedule> {
  const [row] = await pg(exec.unsafe<Schedule[]>(`select ${SCHEDULE_COLUMNS} from schedules where name = $1`, [params.name] as never[]));
  if (!row) throw notFound('schedule', params.name);
  return row;
}
