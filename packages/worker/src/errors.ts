/**
 * Errors a handler throws or sees. The runtime decides retry from them: NonRetryableError (or
 * any error with `retryable: false`) fails the job for good; the abort reasons on `ctx.signal`
 * say why a handler was interrupted.
 */
import { DispatchError } from '@pgdispatch/core/errors';

/**
 * Thrown by a handler to fail its job for good: no retry, whatever attempts remain. Any error
 * with an own `retryable: false` property is treated the same way.
 */
export class NonRetryableError extends Error {
  readonly retryable = false as const;
  readonly details: unknown;

  constructor(message: string, opts: { details?: unknown; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'NonRetryableError';
    this.details = opts.details;
  }
}

/** `ctx.signal.reason` when the job was cancelled through the API. */
export class JobCancelledError extends Error {
  readonly retryable = false as const;

  constructor(readonly jobId: number) {
    super(`job ${jobId} was cancelled`);
    this.name = 'JobCancelledError';
  }
}

/** `ctx.signal.reason` when the worker stopped and the shutdown grace period ran out. */
export class WorkerShutdownError extends Error {
  constructor(message = 'worker is shutting down') {
    super(message);
    this.name = 'WorkerShutdownError';
  }
}

/**
 * Whether a thrown value declares itself final (`retryable: false`). DispatchError is judged by
 * its code instead of its `retryable` flag (which only marks `unavailable` as retryable): only a
 * request the control plane rejected as malformed or too large fails the same way next time; a
 * 500, an expired token or a conflict may well pass on another attempt or another worker.
 */
export function declaresNonRetryable(err: unknown): boolean {
  if (err instanceof DispatchError) return err.code === 'invalid_request' || err.code === 'payload_too_large';
  return err instanceof NonRetryableError || (!!err && typeof err === 'object' && (err as { retryable?: unknown }).retryable === false);
}
