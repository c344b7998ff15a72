import type { Schedule } from '@pgdispatch/core/schedule';
import type { Exec } from '../db.js';
import { pg } from '../pg-errors.js';
import { SCHEDULE_COLUMNS } from './schedule-columns.js';

/** Every schedule by name, optionally of one queue. Schedules are few (one row per recurring job). */
export async function scheduleList(exec: Exec, params: { queue?: string } = {}): Promise<Schedule[]> {
  return pg(exec.unsafe<Schedule[]>(
    `select ${SCHEDULE_COLUMNS} from schedules where $1::text is null or queue = $1 order by name`,
    [params.queue ?? null] as never[],
  ));
}
