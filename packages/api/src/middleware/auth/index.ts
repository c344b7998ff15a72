import type { MiddlewareHandler } from 'hono';
import type { ApiKey, ApiScope, WorkerKey } from '@pgdispatch/core/config';
import { DispatchError } from '@pgdispatch/core/errors';
import { secretsEqual, verifyWorkerToken, type WorkerIdentity } from '../../tokens.js';

export type AuthVariables = { scopes: ReadonlySet<ApiScope>; worker: WorkerIdentity };

function bearer(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  return m?.[1];
}

const ALL_SCOPES: ReadonlySet<ApiScope> = new Set(['enqueue', 'read', 'admin']);

/**
 * The scopes a request's API key grants: every scope when no keys are configured, `undefined`
 * when it sends no key, `unauthorized` for a key that is not one of `keys`.
 */
export function requestScopes(keys: readonly ApiKey[], headers: { authorization?: string | undefined; apiKey?: string | undefined }): ReadonlySet<ApiScope> | undefined {
  if (keys.length === 0) return ALL_SCOPES;
  const token = bearer(headers.authorization) ?? headers.apiKey;
  if (!token) return undefined;
  const key = keys.find((k) => secretsEqual(token, k.secret));
  if (!key) throw new DispatchError('unauthorized', 'invalid API key');
  return key.scopes.includes('admin') ? ALL_SCOPES : new Set(key.scopes);
}

/**
 * Public API keys (`Authorization: Bearer <key>` or `X-API-Key`). With no keys configured (role
 * all, local use) every request gets every scope. Worker credentials are not API keys: 401.
 */
export function apiKeyAuth(opts: { keys: readonly ApiKey[] }): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async function apiKeyAuth(c, next) {
    const scopes = requestScopes(opts.keys, { authorization: c.req.header('authorization'), apiKey: c.req.header('x-api-key') });
    if (!scopes) throw new DispatchError('unauthorized', 'missing API key (Authorization: Bearer <key>)');
    c.set('scopes', scopes);
    return next();
  };
}

/** Route guard: the key must carry `scope` (admin carries all). */
export function requireScope(scope: ApiScope): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async function requireScope(c, next) {
    if (!c.get('scopes').has(scope)) throw new DispatchError('forbidden', `this API key lacks the ${scope} scope`, { details: { required: scope } });
    return next();
  };
}

/** Internal API: a worker JWT (HS256, exp) or a static worker key; sets the worker identity. */
export function workerAuth(opts: { secret?: string; keys: readonly WorkerKey[] }): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async function workerAuth(c, next) {
    const token = bearer(c.req.header('authorization'));
    if (!token) throw new DispatchError('unauthorized', 'missing worker token (Authorization: Bearer <token>)');
    c.set('worker', await verifyWorkerToken(token, opts));
    return next();
  };
}
