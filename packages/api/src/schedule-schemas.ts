import { z } from 'zod';
import { queueNameSchema } from '@pgdispatch/core/queue-name';
import { CATCH_UP_POLICIES, cronProblem } from '@pgdispatch/core/schedule';

/** /v1/schedules request schemas: they validate requests and generate /openapi.json. */
const fields = {
  cron: z.string().min(1).max(200).describe('5 fields (minute hour day month weekday) or 6 with seconds first'),
  timeZone: z.string().min(1).max(64).optional().describe('IANA time zone the expression is read in (default UTC); DST as Vixie cron'),
  queue: queueNameSchema.describe('Queue the jobs go to'),
  task: z.string().min(1).max(128).describe('Task name the worker runs'),
  payload: z.unknown().optional().describe('Any JSON, the payload of every job (default {})'),
  priority: z.number().int().min(-32768).max(32767).optional().describe('Lower runs first (default 0)'),
  maxAttempts: z.number().int().min(1).max(1000).nullable().optional().describe('null = the queue default'),
  enabled: z.boolean().optional().describe('Default true; false pauses the schedule'),
  catchUp: z.enum(CATCH_UP_POLICIES).optional().describe('Ticks missed while no api pod ran: all (newest 100), latest (default), none'),
};

/** Cron and zone are checked by the same function the engine uses, so a 400 names the field. */
function checkCron(b: { cron?: string | undefined; timeZone?: string | undefined }, ctx: z.RefinementCtx): void {
  if (b.cron === undefined && b.timeZone === undefined) return;
  const problem = cronProblem(b.cron ?? '* * * * *', b.timeZone ?? 'UTC');
  if (problem) ctx.addIssue({ code: 'custom', path: [problem.field], message: problem.message });
}

export const scheduleCreateBody = z
  .strictObject({ name: queueNameSchema.describe('Schedule name (same rules as queue names)'), ...fields })
  .superRefine(checkCron);

export const schedulePatchBody = z
  .strictObject({
    cron: fields.cron.optional(),
    timeZone: fields.timeZone,
    queue: fields.queue.optional(),
    task: fields.task.optional(),
    payload: fields.payload,
    priority: fields.priority,
    maxAttempts: fields.maxAttempts,
    enabled: fields.enabled,
    catchUp: fields.catchUp,
  })
  .superRefine(checkCron);

export const listSchedulesQuery = z.strictObject({ queue: queueNameSchema.optional() });
