import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { DispatchError, type ErrorCode } from '@pgdispatch/core/errors';
import { toDispatchError } from '@pgdispatch/engine/pg-errors';
import type { Logger } from '@pgdispatch/core/log';

/** The one mapping from error codes to HTTP statuses. */
export const STATUS_BY_CODE: Record<ErrorCode, ContentfulStatusCode> = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  lease_lost: 409,
  invalid_state: 409,
  payload_too_large: 413,
  unavailable: 503,
  internal: 500,
};

/** Seconds a client should wait before retrying a 503. */
const RETRY_AFTER_SECONDS = '1';

/** app.onError: every failure becomes `{ error: { code, message, details? } }`; never a stack trace. */
export function errorHandler(log: Logger) {
  return function onError(err: Error, c: Context): Response {
    let e: DispatchError;
    if (err instanceof DispatchError) e = err;
    else if (err instanceof HTTPException) {
      const status = err.status;
      const code: ErrorCode = status === 413 ? 'payload_too_large' : status === 401 ? 'unauthorized' : status === 404 ? 'not_found' : status < 500 ? 'invalid_request' : 'internal';
      e = new DispatchError(code, err.message || 'request failed');
    } else if (err instanceof RangeError && /call stack/i.test(err.message)) {
      // A request value nested so deep (tens of thousands of levels) that serializing it overflows
      // the stack: the input's fault, not ours (found by `npm run chaos`'s fuzzing: 50,000 levels
      // in a result answered 500).
      e = new DispatchError('invalid_request', 'request value is nested too deeply', { cause: err });
    } else e = toDispatchError(err);
    const status = STATUS_BY_CODE[e.code];
    if (status >= 500) log.error('request failed', { code: e.code, path: c.req.path, error: String(err), cause: String(e.cause ?? '') });
    if (status === 503) c.header('Retry-After', RETRY_AFTER_SECONDS);
    return c.json({ error: e.toJSON() }, status);
  };
}

export function notFoundHandler(c: Context): Response {
  return c.json({ error: { code: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` } }, 404);
}
