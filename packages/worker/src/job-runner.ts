/**
 * Runs one held job's handler to a verdict: the task's payload schema, the handler, and the
 * decision whether a failure may be retried. Reporting the verdict is outcome-delivery.ts's job.
 */
import { isDispatchError } from '@pgdispatch/core/errors';
import type { Logger } from '@pgdispatch/core/log';
import type { Transport } from '@pgdispatch/core/transport';
import { createJobContext } from './context.js';
import { declaresNonRetryable, NonRetryableError } from './errors.js';
import type { HeldJob } from './held-job.js';
import { toJsonValue } from './json.js';
import type { TaskDefinition, TaskRegistry } from './task.js';

/**
 * What the handler's run comes to: a JSON result to complete with, a failure, a lost lease, or a
 * task this worker does not know (to give back unspent: another worker may know it).
 */
export type Verdict = { kind: 'complete'; result: unknown } | { kind: 'fail'; error: unknown; retryable: boolean } | { kind: 'lost' } | { kind: 'unknown_task' };

export interface RunnerDeps {
  tasks: TaskRegistry;
  transport: Transport;
  log: Logger;
}

/** Never throws: every path ends in a verdict. */
export async function runJob(held: HeldJob, deps: RunnerDeps): Promise<Verdict> {
  const { job } = held;
  const task = deps.tasks.get(job.task);
  if (!task) return { kind: 'unknown_task' };
  let payload: unknown;
  try {
    const parsed = await task.payload.safeParseAsync(job.payload);
    if (!parsed.success) {
      return { kind: 'fail', error: new NonRetryableError(`payload does not match the schema of task ${job.task}`, { details: { issues: parsed.error.issues } }), retryable: false };
    }
    payload = parsed.data;
  } catch (err) {
    // A refinement that throws (instead of reporting an issue) is the task's bug, not the data's.
    return { kind: 'fail', error: err, retryable: isRetryable(task, err, deps.log) };
  }
  let result: unknown;
  try {
    // The signal is made on first read (HeldJob.signal): most handlers never look at it.
    const ctx = createJobContext({ job, transport: deps.transport, signal: () => held.signal, log: deps.log });
    const returned = task.handler(payload, ctx);
    // A synchronous handler's value needs no extra promise and microtask turn.
    result = isThenable(returned) ? await returned : returned;
  } catch (err) {
    if (isDispatchError(err, 'lease_lost')) return { kind: 'lost' };
    // The engine records a failure of a job with cancel requested as `cancelled`.
    return { kind: 'fail', error: err, retryable: held.state !== 'cancelling' && isRetryable(task, err, deps.log) };
  }
  try {
    return { kind: 'complete', result: toJsonValue(result, 'job result') };
  } catch (err) {
    return { kind: 'fail', error: err, retryable: false };
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

/** NonRetryableError and `retryable: false` always win; then the task's own rule (default: retry). */
function isRetryable(task: TaskDefinition, err: unknown, log: Logger): boolean {
  if (declaresNonRetryable(err)) return false;
  if (typeof task.retryable === 'function') {
    try {
      return task.retryable(err);
    } catch (predicateErr) {
      log.error('retryable predicate threw; treating the error as retryable', { err: predicateErr, task: task.name });
      return true;
    }
  }
  return task.retryable !== false;
}
