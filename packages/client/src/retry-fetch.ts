/**
 * The one HTTP request helper of pgdispatch's clients: the public API client (client.ts) and the
 * worker's HTTP transport both send JSON through `requestJson`, so retry, backoff and error
 * mapping behave the same everywhere.
 *
 * Retry rule: network errors and 503 are retried with exponential backoff and full jitter (503
 * honours `Retry-After`); any other status, 4xx included, is final. A network error that may
 * have happened after the request reached the server (connection reset, timeout) is retried only
 * for requests marked `idempotent`, because repeating them could apply them twice; a refused or
 * unresolvable connection never reached a server and is always retried.
 */
import { backoffDelayMs } from '@pgdispatch/core/backoff';
import { abortableSleep } from '@pgdispatch/core/timing';
import { codeForStatus, DispatchError, ERROR_CODES } from '@pgdispatch/core/errors';
import type { ErrorCode } from '@pgdispatch/core/errors';
import { httpFetch } from './http-fetch.js';

export interface RetryOptions {
  /** Total tries including the first (default 5). 1 disables retries. */
  attempts: number;
  /** Backoff before the first retry, in ms (default 200); doubles per retry, with full jitter. */
  baseMs: number;
  /** Cap of one backoff delay, in ms (default 5000). */
  maxMs: number;
  /** Cap of a server's `Retry-After`, in ms (default 30000), so one header cannot stall a caller. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: Readonly<RetryOptions> = Object.freeze({ attempts: 5, baseMs: 200, maxMs: 5_000, maxRetryAfterMs: 30_000 });

export type FetchLike = typeof fetch;

export interface JsonRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  /** Serialized with JSON.stringify; omitted when undefined. */
  body?: unknown;
  /** Aborting cancels the request and any pending retry; the abort reason is thrown. */
  signal?: AbortSignal;
  /** Per-try timeout in ms, response body included (default 30000); a timeout counts as a network error. */
  timeoutMs?: number;
  /** Safe to repeat after a possibly delivered request (default false); see the module doc. */
  idempotent?: boolean;
}

export interface JsonResponse<T = unknown> {
  status: number;
  body: T;
}

export interface RequestDeps {
  fetch?: FetchLike;
  retry?: Partial<RetryOptions>;
  /** Injectable for tests: uniform [0, 1). */
  random?: () => number;
}

/** Error codes of undici/Node that prove the request never left this process. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH']);


/**
 * Sends one JSON request with retries and returns the parsed 2xx body. Any non-2xx final answer
 * throws `DispatchError` built from the API's `{ error: { code, message, details } }` (code falls
 * back to one derived from the status); exhausted network retries throw `unavailable`.
 */
export async function requestJson<T = unknown>(req: JsonRequest, deps: RequestDeps = {}): Promise<JsonResponse<T>> {
  const fetchImpl = deps.fetch ?? httpFetch;
  const retry = { ...DEFAULT_RETRY, ...deps.retry };
  const attempts = Math.max(1, Math.floor(retry.attempts));
  const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
  const body = req.body === undefined ? undefined : JSON.stringify(req.body);
  if (body !== undefined) headers['content-type'] = 'application/json';

  for (let attempt = 1; ; attempt++) {
    req.signal?.throwIfAborted();
    let res: { status: number; retryAfter: string | null; text: string };
    try {
      res = await fetchOnce(fetchImpl, req, { method: req.method, headers, body });
    } catch (err) {
      // The caller's abort is not a failure to retry: surface its reason unchanged.
      req.signal?.throwIfAborted();
      const retryable = req.idempotent === true || notSent(err);
      if (!retryable || attempt >= attempts) {
        throw new DispatchError('unavailable', `${req.method} ${pathOf(req.url)} failed: ${describe(err)}`, {
          cause: err,
          retryable,
          details: { attempts: attempt },
        });
      }
      await pause(backoffDelayMs(attempt, retry, deps.random), req.signal);
      continue;
    }
    if (res.status === 503 && attempt < attempts) {
      const wait = retryAfterMs(res.retryAfter);
      await pause(wait === undefined ? backoffDelayMs(attempt, retry, deps.random) : Math.min(wait, retry.maxRetryAfterMs), req.signal);
      continue;
    }
    if (res.status >= 200 && res.status < 300) return { status: res.status, body: (res.text === '' ? undefined : parseJson(res.text, req)) as T };
    throw errorFromResponse(res.status, res.text, req);
  }
}

/**
 * One fetch, body included, bounded by `req.timeoutMs` and `req.signal`. The two are joined by
 * hand rather than with AbortSignal.any: a worker passes the same long-lived stop signal to every
 * dequeue, and AbortSignal.any retains each derived signal on its source (nodejs/node#55351), a
 * slow leak. The listener and the timer are removed once the body has been read.
 */
async function fetchOnce(fetchImpl: FetchLike, req: JsonRequest, init: RequestInit): Promise<{ status: number; retryAfter: string | null; text: string }> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(req.signal?.reason);
  req.signal?.addEventListener('abort', onAbort, { once: true });
  const timeoutMs = req.timeoutMs ?? 30_000;
  const timer = setTimeout(() => controller.abort(new DOMException(`request timed out after ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
  try {
    const res = await fetchImpl(req.url, { ...init, signal: controller.signal });
    // Read the body even for a 503 we will retry: a drained response frees its connection for reuse.
    return { status: res.status, retryAfter: res.headers.get('retry-after'), text: await res.text() };
  } finally {
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', onAbort);
  }
}

/** Builds a DispatchError from an error response body, tolerating non-JSON bodies from proxies. */
export function errorFromResponse(status: number, text: string, req?: Pick<JsonRequest, 'method' | 'url'>): DispatchError {
  let code: ErrorCode = codeForStatus(status);
  let message = `HTTP ${status}${req ? ` from ${req.method} ${pathOf(req.url)}` : ''}`;
  let details: unknown;
  try {
    const parsed: unknown = JSON.parse(text);
    const e = (parsed as { error?: unknown } | null)?.error;
    if (e && typeof e === 'object') {
      const { code: c, message: m, details: d } = e as { code?: unknown; message?: unknown; details?: unknown };
      if (typeof c === 'string' && (ERROR_CODES as readonly string[]).includes(c)) code = c as ErrorCode;
      if (typeof m === 'string') message = m;
      details = d;
    }
  } catch {
    // Not JSON (a proxy's HTML page, an empty body): keep the status-derived code, show a snippet.
    if (text) details = { body: text.slice(0, 200) };
  }
  return new DispatchError(code, message, { details, retryable: status === 503 });
}

/** `Retry-After` as delay-seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1_000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Waits `ms` between tries; an abort of `signal` ends the request with the signal's reason. */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (!(await abortableSleep(ms, signal))) throw signal?.reason;
}

function parseJson(text: string, req: JsonRequest): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DispatchError('internal', `${req.method} ${pathOf(req.url)} answered with a body that is not JSON`, { cause: err, details: { body: text.slice(0, 200) } });
  }
}

function notSent(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NOT_SENT_CODES.has(code)) return true;
  }
  return false;
}

function describe(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof Error) parts.push((e as { code?: string }).code ? `${e.message} (${(e as { code?: string }).code})` : e.message);
    else parts.push(String(e));
    if (typeof e !== 'object') break;
  }
  return parts.join(': ');
}

/** The path only, so that query strings (cursors, filters) do not leak into error messages. */
function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url;
  }
}
