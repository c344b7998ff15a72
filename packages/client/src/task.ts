/**
 * `defineTask` for producers: a task's contract (name, payload schema, default queue) without its
 * handler, so the service that enqueues does not import the worker's code. Pass it to
 * `client.enqueue(task, payload)` and the payload is type-checked against the schema (and
 * validated before it is sent). The worker implements the same contract with the worker SDK's
 * `defineTask({ ...task, handler })`, or producers import the worker's own definition directly.
 */
import { DispatchError } from '@pgdispatch/core/errors';
import { isValidQueueName, NAME_PATTERN } from '@pgdispatch/core/queue-name';
import { TASK_NAME_PATTERN } from '@pgdispatch/core/task-spec';
import type { TaskSpec } from '@pgdispatch/core/task-spec';
import type { z } from 'zod';

export type { TaskPayload, TaskSpec } from '@pgdispatch/core/task-spec';

export function defineTask<S extends z.ZodType, N extends string = string>(def: { name: N; payload: S; queue?: string }): TaskSpec<S, N> {
  if (typeof def.name !== 'string' || !TASK_NAME_PATTERN.test(def.name)) throw new TypeError(`task name ${JSON.stringify(def.name)} must match ${TASK_NAME_PATTERN.source}`);
  if (!isTaskSpec(def)) throw new TypeError(`task ${String((def as { name: unknown }).name)}: payload must be a zod schema`);
  if (def.queue !== undefined && !isValidQueueName(def.queue)) throw new TypeError(`task ${def.name}: queue ${JSON.stringify(def.queue)} must match ${NAME_PATTERN.source}`);
  return Object.freeze({ name: def.name, payload: def.payload, ...(def.queue !== undefined ? { queue: def.queue } : {}) });
}

/** Structural: a client-side or a worker-side definition (from any copy of zod) both pass. */
export function isTaskSpec(v: unknown): v is TaskSpec {
  if (!v || typeof v !== 'object') return false;
  const t = v as { name?: unknown; payload?: { safeParseAsync?: unknown } };
  return typeof t.name === 'string' && !!t.payload && typeof t.payload.safeParseAsync === 'function';
}

/** Validates `payload` with the task's schema; a mismatch is `invalid_request` with the zod issues, as the api would answer. */
export async function checkPayload(task: TaskSpec, payload: unknown): Promise<void> {
  const r = await task.payload.safeParseAsync(payload);
  if (r.success) return;
  throw new DispatchError('invalid_request', `payload does not match the schema of task ${task.name}`, {
    details: r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message, code: i.code })),
  });
}
