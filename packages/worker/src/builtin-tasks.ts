/**
 * Tasks every pgdispatch worker can run without user code: `noop` (benchmarks, smoke tests),
 * `sleep` (tests, demos, cancellation) and `http.request` (webhooks, in http-request-task.ts).
 * BUILTIN_TASKS chooses which of them a process runs.
 */
import { BUILTIN_TASK_NAMES, type BuiltinTaskName } from '@pgdispatch/core/config';
import { z } from 'zod';
import { createHttpRequestTask, httpRequestTask, type HttpRequestTaskOptions } from './http-request-task.js';
import { defineTask } from './task.js';
import type { TaskDefinition } from './task.js';

export { HTTP_BODY_MAX_BYTES, HttpRequestError, httpRequestPayload, httpRequestTask } from './http-request-task.js';
/** Longest `sleep`, in ms (10 minutes). */
export const SLEEP_MAX_MS = 600_000;

/** `noop`: accepts any payload, returns `{ ok: true }`. */
export const noopTask = defineTask({
  name: 'noop',
  payload: z.unknown(),
  handler: () => ({ ok: true as const }),
});

/** `sleep`: waits `ms` (0–600000), then returns `{ sleptMs }`; aborts at once on cancel or shutdown. */
export const sleepTask = defineTask({
  name: 'sleep',
  payload: z.object({ ms: z.number().int().min(0).max(SLEEP_MAX_MS) }),
  handler: async ({ ms }, ctx) => {
    await new Promise<void>((resolve, reject) => {
      if (ctx.signal.aborted) return reject(ctx.signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      };
      const timer = setTimeout(() => {
        ctx.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      ctx.signal.addEventListener('abort', onAbort, { once: true });
    });
    return { sleptMs: ms };
  },
});

export interface BuiltinTaskOptions {
  /** BUILTIN_TASKS: which built-ins to include (default all three). */
  names?: readonly BuiltinTaskName[];
  /** Policy and response cap of http.request (HTTP_TASK_ALLOW, HTTP_TASK_MAX_RESPONSE_BYTES). */
  http?: HttpRequestTaskOptions;
}

/** The built-in tasks selected by `names`, in a fresh array (callers may add their own). */
export function builtinTasks(opts: BuiltinTaskOptions = {}): TaskDefinition[] {
  const names = opts.names ?? BUILTIN_TASK_NAMES;
  const all: Record<BuiltinTaskName, TaskDefinition> = {
    noop: noopTask,
    sleep: sleepTask,
    'http.request': opts.http ? createHttpRequestTask(opts.http) : httpRequestTask,
  };
  return BUILTIN_TASK_NAMES.filter((n) => names.includes(n)).map((n) => all[n]);
}

