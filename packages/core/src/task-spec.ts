/**
 * A task's contract: its name, the zod schema of its payload and, optionally, the queue producers
 * enqueue it to. Shared by both ends: the worker SDK's `defineTask` (which adds the handler)
 * returns one, and the client's `enqueue(task, payload)` type-checks the payload against it, so a
 * task defined once types its producers and its handler (the way tRPC shares a router's types).
 */
import type { z } from 'zod';

/** Task names: letters, digits, `.`, `_`, `:`, `-`; 1–128 characters (no `,` or `|`, which key dispatcher groups). */
export const TASK_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export interface TaskSpec<S extends z.ZodType = z.ZodType, N extends string = string> {
  readonly name: N;
  /** Validates the payload: producers send its input type, the handler receives its output type. */
  readonly payload: S;
  /** Queue a producer enqueues to when it names none. */
  readonly queue?: string;
}

/** What a producer passes as the payload of `task`. */
export type TaskPayload<T extends TaskSpec> = z.input<T['payload']>;
