// The one code → HTTP status mapping (errors.ts), exercised through a real hono app: every
// DispatchError code, framework errors and unexpected throws.
import { DispatchError, ERROR_CODES, type ErrorCode } from '@pgdispatch/core/errors';
import { silentLogger } from '@pgdispatch/core/log';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { describe, expect, it } from 'vitest';
import { errorHandler, notFoundHandler } from './errors.js';

/** The statuses docs/api.md promises, written out here rather than read from the code under test. */
const EXPECTED: Record<ErrorCode, number> = {
  invalid_request: 400, unauthorized: 401, forbidden: 403, not_found: 404, conflict: 409, lease_lost: 409,
  invalid_state: 409, payload_too_large: 413, unavailable: 503, internal: 500,
};

function appThrowing(err: () => unknown): Hono {
  const app = new Hono();
  app.onError(errorHandler(silentLogger));
  app.notFound(notFoundHandler);
  app.get('/boom', () => {
    throw err();
  });
  return app;
}

describe('error mapping', () => {
  it.each(ERROR_CODES.map((code) => [code]))('DispatchError %s answers its documented status with the JSON error body', async (code) => {
    const res = await appThrowing(() => new DispatchError(code, `it was ${code}`, { details: { why: code } })).request('/boom');
    expect(res.status).toBe(EXPECTED[code]);
    expect(await res.json()).toEqual({ error: { code, message: `it was ${code}`, details: { why: code } } });
    expect(res.headers.get('retry-after')).toBe(code === 'unavailable' ? '1' : null);
  });

  it('an unexpected throw is a 500 internal without the stack or the message of the cause', async () => {
    const res = await appThrowing(() => new TypeError('secret detail at /srv/app.js:1')).request('/boom');
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('internal');
    expect(JSON.stringify(body)).not.toMatch(/srv\/app|at .*:\d+/);
  });

  it('hono HTTPExceptions keep their status class', async () => {
    expect((await appThrowing(() => new HTTPException(401)).request('/boom')).status).toBe(401);
    expect((await appThrowing(() => new HTTPException(413)).request('/boom')).status).toBe(413);
    const bad = await appThrowing(() => new HTTPException(422, { message: 'nope' })).request('/boom');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'invalid_request', message: 'nope' } });
  });

  it('an unknown route is a JSON 404 naming the method and path', async () => {
    const res = await appThrowing(() => null).request('/nowhere', { method: 'DELETE' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'not_found', message: 'no route for DELETE /nowhere' } });
  });
});
