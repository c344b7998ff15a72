import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { DispatchError, HTTP_STATUS_BY_CODE, type ErrorCode } from '@pgdispatch/core/errors';
import { toDispatchError } from '@pgdispatch/engine/pg-errors';
import type { Logger } from '@pgdispatch/core/log';


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
    const status: ContentfulStatusCode = HTTP_STATUS_BY_CODE[e.code];
    if (status >= 500) log.error('request failed', { code: e.code, path: c.req.path, error: String(err), cause: String(e.cause ?? '') });
    if (status === 503) c.header('Retry-After', RETRY_AFTER_SECONDS);
    return c.json({ error: e.toJSON() }, status);
  };
}

export function notFoundHandler(c: Context): Response {
  return c.json({ error: { code: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` } }, 404);
}
