/**
 * Task definitions: a name, a zod schema for the payload and a handler. The runtime parses the
 * payload with the schema before the handler runs; a payload that does not match fails the job
 * at once and for good (retrying the same bytes cannot fix it), with the zod issues as details.
 */
import { isValidQueueName, NAME_PATTERN } from '@pgdispatch/core/queue-name';
import { TASK_NAME_PATTERN } from '@pgdispatch/core/task-spec';
import type { TaskSpec } from '@pgdispatch/core/task-spec';
import type { z } from 'zod';
import type { JobContext } from './context.js';

export { TASK_NAME_PATTERN };

export type TaskHandler<P, R> = (payload: P, ctx: JobContext) => Promise<R> | R;

/** A task's contract (TaskSpec: name, payload schema, default queue) plus its handler. */
export interface TaskDefinition<S extends z.ZodType = z.ZodType, R = unknown, N extends string = string> extends TaskSpec<S, N> {
  // Method syntax on purpose: it makes a definition for a specific payload type assignable to
  // TaskDefinition (a registry of mixed tasks); the runtime only calls it with parsed payloads.
  handler(payload: z.output<S>, ctx: JobContext): Promise<R> | R;
  /**
   * Whether a thrown error may be retried (default true, within the job's maxAttempts). A
   * function decides per error. An error that is a NonRetryableError or carries
   * `retryable: false` is never retried, whatever this says.
   */
  readonly retryable?: boolean | ((error: unknown) => boolean);
}

/**
 * Declares a task. The result must be JSON-serializable: it is stored as the job's result. The
 * definition is also a TaskSpec: producer code that imports it gets `client.enqueue(task, payload)`
 * checked against the payload schema. `queue` is the queue producers use when they name none.
 *
 * @example
 * export const resize = defineTask({
 *   name: 'images.resize',
 *   payload: z.object({ url: z.url(), width: z.number().int() }),
 *   async handler({ url, width }, ctx) { … },
 * });
 */
export function defineTask<S extends z.ZodType, R, N extends string = string>(def: {
  name: N;
  payload: S;
  queue?: string;
  handler: TaskHandler<z.output<S>, R>;
  retryable?: boolean | ((error: unknown) => boolean);
}): TaskDefinition<S, R, N> {
  if (typeof def.name !== 'string' || !TASK_NAME_PATTERN.test(def.name)) {
    throw new TypeError(`task name ${JSON.stringify(def.name)} must match ${TASK_NAME_PATTERN.source}`);
  }
  if (def.queue !== undefined && !isValidQueueName(def.queue)) throw new TypeError(`task ${def.name}: queue ${JSON.stringify(def.queue)} must match ${NAME_PATTERN.source}`);
  if (!isZodSchema(def.payload)) throw new TypeError(`task ${def.name}: payload must be a zod schema`);
  if (typeof def.handler !== 'function') throw new TypeError(`task ${def.name}: handler must be a function`);
  return Object.freeze({ ...def });
}

/** Name → task. Names are unique: registering one twice is a programming error and throws. */
export class TaskRegistry {
  readonly #tasks = new Map<string, TaskDefinition>();

  constructor(tasks: Iterable<TaskDefinition> = []) {
    for (const t of tasks) this.register(t);
  }

  register(task: TaskDefinition): this {
    if (!isTaskDefinition(task)) throw new TypeError('not a task definition (use defineTask)');
    if (this.#tasks.has(task.name)) throw new TypeError(`task ${JSON.stringify(task.name)} is defined twice`);
    this.#tasks.set(task.name, task);
    return this;
  }

  get(name: string): TaskDefinition | undefined {
    return this.#tasks.get(name);
  }

  has(name: string): boolean {
    return this.#tasks.has(name);
  }

  names(): string[] {
    return [...this.#tasks.keys()];
  }

  get size(): number {
    return this.#tasks.size;
  }
}

/** Structural check, so definitions from another copy of this package (or zod) still pass. */
export function isTaskDefinition(v: unknown): v is TaskDefinition {
  if (!v || typeof v !== 'object') return false;
  const t = v as Partial<TaskDefinition>;
  return typeof t.name === 'string' && TASK_NAME_PATTERN.test(t.name) && typeof t.handler === 'function' && isZodSchema(t.payload);
}

function isZodSchema(v: unknown): v is z.ZodType {
  return !!v && typeof v === 'object' && typeof (v as { safeParse?: unknown }).safeParse === 'function';
}
