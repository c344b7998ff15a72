import { bodyLimit as honoBodyLimit } from 'hono/body-limit';
import type { MiddlewareHandler } from 'hono';
import { DispatchError } from '@pgdispatch/core/errors';

/** Rejects bodies over `maxBytes` (default 4 MiB) with 413 payload_too_large, before parsing. */
export function bodyLimit(opts: { maxBytes?: number } = {}): MiddlewareHandler {
  const maxSize = opts.maxBytes ?? 4 * 1024 * 1024;
  return honoBodyLimit({
    maxSize,
    onError: () => {
      throw new DispatchError('payload_too_large', `request body exceeds ${maxSize} bytes`, { details: { limit: maxSize } });
    },
  });
}
