import { DispatchError, isDispatchError } from '@pgdispatch/core/errors';
import { parseCron, planTicks, type Schedule } from '@pgdispatch/core/schedule';
import type { Exec } from '../db.js';
import { inTx } from '../db.js';
import { pg } from '../pg-errors.js';
import { SCHEDULE_COLUMNS, scheduleTickKey } from './schedule-columns.js';
import { jobEnqueueMany } from './job-enqueue.js';

export interface TickResult {
  schedule: string;
  queue: string;
  /** Ticks enqueued by this claim, oldest first. `created: false` = the tick's job already existed. */
  fired: { at: Date; late: boolean; jobId: number; created: boolean }[];
  /** Missed ticks the catch-up policy dropped. */
  skipped: number;
  nextRunAt: Date | null;
}

/**
 * Claims ONE due schedule and fires its due ticks, all in one transaction:
 *
 * 1. `select … where enabled and next_run_at <= now() order by next_run_at limit 1 for update skip
 *    locked` (through `schedules_due_idx`): a schedule another scheduler holds is skipped, not
 *    waited for; one that another scheduler just advanced is re-checked by PostgreSQL against its
 *    newest row version, whose next_run_at is in the future, so it is not due any more.
 * 2. `planTicks` (core) decides from the database's now() which ticks fire (grace window and
 *    catch-up policy) and the next tick after now().
 * 3. The ticks' jobs go through the ordinary enqueue statement (`jobEnqueueMany`) with the
 *    idempotency key `schedule:<name>:<tick ISO time>`, a second line of defence: even a
 *    bookkeeping bug could not create two jobs for one tick of one queue.
 * 4. next_run_at moves past now() under the same row lock; the commit publishes jobs and
 *    bookkeeping together. A crash before commit rolls both back: the tick stays due.
 *
 * One schedule per transaction keeps row locks short and isolates a schedule whose enqueue fails
 * (the error names it in `details.schedule`; pass it in `exclude` to go on with the others).
 * Returns null when nothing is due.
 */
export async function scheduleTick(exec: Exec, params: { graceMs: number; maxPayloadBytes?: number; exclude?: string[] }): Promise<TickResult | null> {
  return inTx(exec, async (tx) => {
    const [row] = await pg(tx.unsafe<(Schedule & { now: Date })[]>(
      `select ${SCHEDULE_COLUMNS}, now() as now from schedules
        where enabled and next_run_at <= now() and name <> all($1::text[])
        order by next_run_at
        limit 1
        for update skip locked`,
      [params.exclude ?? []] as never[],
    ));
    if (!row) return null;
    try {
      const plan = planTicks({ cron: parseCron(row.cron, row.timeZone), nextRunAt: row.nextRunAt, now: row.now, graceMs: params.graceMs, policy: row.catchUp });
      const results = await jobEnqueueMany(tx, {
        items: plan.fire.map((f) => ({
          queue: row.queue,
          task: row.task,
          payload: row.payload,
          priority: row.priority,
          ...(row.maxAttempts !== null && { maxAttempts: row.maxAttempts }),
          idempotencyKey: scheduleTickKey(row.name, f.at),
        })),
        ...(params.maxPayloadBytes !== undefined && { maxPayloadBytes: params.maxPayloadBytes }),
      });
      const fired = plan.fire.map((f, i) => ({ at: f.at, late: f.late, jobId: results[i]!.job.id, created: results[i]!.created }));
      const last = fired.at(-1);
      // An expression with no future tick (cannot be stored, but a zone database update could
      // make one) disables the schedule instead of leaving it due forever.
      await pg(tx.unsafe(
        `update schedules set next_run_at = coalesce($2, next_run_at), enabled = enabled and $2::timestamptz is not null,
                last_tick_at = coalesce($3, last_tick_at), last_job_id = coalesce($4, last_job_id), updated_at = now()
          where name = $1`,
        [row.name, plan.nextRunAt, last?.at ?? null, last?.jobId ?? null] as never[],
      ));
      return { schedule: row.name, queue: row.queue, fired, skipped: plan.skipped, nextRunAt: plan.nextRunAt };
    } catch (err) {
      if (isDispatchError(err) && err.code === 'unavailable') throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new DispatchError(isDispatchError(err) ? err.code : 'internal', `schedule ${row.name}: ${message}`, { cause: err, details: { schedule: row.name } });
    }
  });
}
