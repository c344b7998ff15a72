/** JSON helpers shared by the context (step results) and the runtime (job results, errors). */
import type { JobError } from '@pgdispatch/core/types';
import { LIMITS } from '@pgdispatch/core/internal-api';
import { NonRetryableError } from './errors.js';

/**
 * The JSON round trip of `value`: what a reader of the stored value will get back (Dates become
 * strings, undefined properties vanish, top-level undefined becomes null). Throws
 * NonRetryableError when the value cannot be serialized (BigInt, cycles): the same code would
 * produce the same value on a retry, so retrying cannot help.
 */
export function toJsonValue(value: unknown, what: string): unknown {
  // The common results need no round trip: most handlers return nothing, or a primitive.
  if (value === undefined || value === null) return null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value + 0 : null;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new NonRetryableError(`${what} is not JSON-serializable: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  // JSON.stringify returns undefined for undefined, functions and symbols.
  return text === undefined ? null : (JSON.parse(text) as unknown);
}

/**
 * A thrown value as the JobError stored on the job: name, message, stack and any `details`
 * the error carries, truncated to the internal API's limits.
 */
export function toJobError(err: unknown, retryable: boolean): JobError {
  const e: JobError = { message: '', retryable };
  if (err instanceof Error) {
    e.name = err.name.slice(0, 200);
    e.message = err.message;
    if (err.stack) e.stack = err.stack.slice(0, LIMITS.errorStackMax);
    const details = (err as { details?: unknown }).details;
    if (details !== undefined) {
      try {
        e.details = toJsonValue(details, 'error details');
      } catch {
        e.details = { unserializable: String(details) };
      }
    }
  } else {
    e.message = typeof err === 'string' ? err : safeString(err);
  }
  if (e.message.length > LIMITS.errorMessageMax) e.message = `${e.message.slice(0, LIMITS.errorMessageMax - 1)}…`;
  if (e.message === '') e.message = e.name ?? 'error';
  return e;
}

function safeString(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
