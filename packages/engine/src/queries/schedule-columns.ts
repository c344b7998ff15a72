import { DispatchError, invalidRequest } from '@pgdispatch/core/errors';
import { isValidQueueName, NAME_PATTERN } from '@pgdispatch/core/queue-name';
import { CATCH_UP_POLICIES, cronProblem, type ScheduleFields } from '@pgdispatch/core/schedule';

/** Column list of a schedule row, aliased to core's Schedule shape. */
export const SCHEDULE_COLUMNS = `name, cron, time_zone as "timeZone", queue, task, payload, priority,
  max_attempts as "maxAttempts", enabled, catch_up as "catchUp", next_run_at as "nextRunAt",
  last_tick_at as "lastTickAt", last_job_id as "lastJobId", created_at as "createdAt", updated_at as "updatedAt"`;

export type { ScheduleFields };

const bad = (path: string, message: string) => invalidRequest(`invalid schedule: ${path} ${message}`, [{ path, message }]);

/**
 * Validates the fields that are present and returns the payload as JSON text (when given), so a
 * schedule that is stored can always be enqueued: same rules as enqueue, plus the cron/zone check.
 */
export function checkScheduleFields(p: Partial<ScheduleFields> & { name?: string }, maxPayloadBytes: number): string | undefined {
  if (p.name !== undefined && !NAME_PATTERN.test(p.name)) throw bad('name', `must match ${NAME_PATTERN.source}`);
  if (p.queue !== undefined && !isValidQueueName(p.queue)) throw bad('queue', `must match ${NAME_PATTERN.source}`);
  if (p.task !== undefined && (typeof p.task !== 'string' || p.task.length === 0 || p.task.length > 128)) throw bad('task', 'must be 1–128 characters');
  if (p.priority !== undefined && (!Number.isInteger(p.priority) || p.priority < -32768 || p.priority > 32767)) throw bad('priority', 'must be an integer in -32768..32767');
  if (p.maxAttempts !== undefined && p.maxAttempts !== null && (!Number.isInteger(p.maxAttempts) || p.maxAttempts < 1 || p.maxAttempts > 1000)) {
    throw bad('maxAttempts', 'must be null or an integer in 1..1000');
  }
  if (p.catchUp !== undefined && !CATCH_UP_POLICIES.includes(p.catchUp)) throw bad('catchUp', `must be one of ${CATCH_UP_POLICIES.join(', ')}`);
  if (p.cron !== undefined || p.timeZone !== undefined) {
    const problem = cronProblem(p.cron ?? '* * * * *', p.timeZone ?? 'UTC');
    if (problem) throw bad(problem.field, problem.message);
  }
  if (p.payload === undefined) return undefined;
  let json: string | undefined;
  try {
    json = JSON.stringify(p.payload);
  } catch (err) {
    throw new DispatchError('invalid_request', 'invalid schedule: payload must be JSON-serialisable', { cause: err, details: [{ path: 'payload', message: 'must be JSON' }] });
  }
  if (json === undefined) throw bad('payload', 'must be JSON');
  // PostgreSQL's jsonb refuses the NUL character; say so instead of failing at insert.
  if (json.includes('\\u0000')) throw bad('payload', 'must not contain the NUL character (\\u0000)');
  const bytes = Buffer.byteLength(json);
  if (bytes > maxPayloadBytes) {
    throw new DispatchError('payload_too_large', `schedule payload is ${bytes} bytes, the limit is ${maxPayloadBytes}`, { details: { bytes, limit: maxPayloadBytes } });
  }
  return json;
}

/** The job idempotency key of one tick: one job per (schedule, tick time) in the schedule's queue. */
export function scheduleTickKey(name: string, at: Date): string {
  return `schedule:${name}:${at.toISOString()}`;
}
