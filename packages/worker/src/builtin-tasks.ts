/**
 * Tasks every pgdispatch worker can run without user code: `noop` (benchmarks, smoke tests),
 * `sleep` (tests, demos, cancellation) and `http.request` (webhooks).
 */
import { z } from 'zod';
import { NonRetryableError } from './errors.js';
import { defineTask } from './task.js';
import type { TaskDefinition } from './task.js';

/** Largest response body `http.request` keeps, in bytes (64 KiB); the rest is discarded. */
export const HTTP_BODY_MAX_BYTES = 64 * 1024;
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

const jsonValue: z.ZodType<unknown> = z.json();

export const httpRequestPayload = z.strictObject({
  /** http(s) URL to call. */
  url: z.url({ protocol: /^https?$/ }),
  /** Default POST. */
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']).default('POST'),
  /** Request headers. An explicit `Idempotency-Key` here wins over the job's. */
  headers: z.record(z.string(), z.string()).default({}),
  /** A string is sent as is; any other JSON value is serialized, with content-type application/json. */
  body: jsonValue.optional(),
  /** Whole-request timeout in ms, response body included (default 10000, at most 600000). */
  timeoutMs: z.number().int().min(1).max(600_000).default(10_000),
});

/** A failed `http.request` call: retryable for 5xx, 429, timeouts and network errors. */
export class HttpRequestError extends Error {
  readonly retryable: boolean;
  readonly details: { status?: number; body?: string; url: string };

  constructor(message: string, opts: { retryable: boolean; details: { status?: number; body?: string; url: string }; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HttpRequestError';
    this.retryable = opts.retryable;
    this.details = opts.details;
  }
}

/**
 * `http.request`: calls a URL (a webhook) with `Idempotency-Key: <ctx.idempotencyKey>`, which is
 * the same on every attempt, so the receiver can deduplicate a retried delivery. 2xx returns
 * `{ status, body, truncated }` (body as text, at most 64 KiB). Otherwise the job fails:
 * 5xx, 429, timeouts and network errors are retryable; any other status is not.
 */
export const httpRequestTask = defineTask({
  name: 'http.request',
  payload: httpRequestPayload,
  handler: async (p, ctx) => {
    const headers = new Headers(p.headers);
    if (!headers.has('idempotency-key')) headers.set('idempotency-key', ctx.idempotencyKey);
    let body: string | undefined;
    if (p.body !== undefined && p.method !== 'GET' && p.method !== 'HEAD') {
      if (typeof p.body === 'string') {
        body = p.body;
      } else {
        body = JSON.stringify(p.body);
        if (!headers.has('content-type')) headers.set('content-type', 'application/json');
      }
    }
    const timeout = AbortSignal.timeout(p.timeoutMs);
    const signal = AbortSignal.any([ctx.signal, timeout]);
    const where = redact(p.url);
    let res: Response;
    let text: { text: string; truncated: boolean };
    try {
      res = await fetch(p.url, { method: p.method, headers, body, signal });
      text = await readCapped(res, HTTP_BODY_MAX_BYTES);
    } catch (err) {
      // A cancel or shutdown is not the endpoint's failure: surface the reason the runtime set.
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const timedOut = timeout.aborted;
      throw new HttpRequestError(timedOut ? `${p.method} ${where} timed out after ${p.timeoutMs} ms` : `${p.method} ${where} failed: ${causeOf(err)}`, {
        retryable: true,
        details: { url: where },
        cause: err,
      });
    }
    if (res.status >= 200 && res.status < 300) return { status: res.status, body: text.text, truncated: text.truncated };
    const retryable = res.status >= 500 || res.status === 429;
    const details = { status: res.status, body: text.text.slice(0, 2_048), url: where };
    const message = `${p.method} ${where} answered ${res.status}`;
    throw retryable ? new HttpRequestError(message, { retryable, details }) : new NonRetryableError(message, { details });
  },
});

/** The built-in tasks, in a fresh array (callers may add their own). */
export function builtinTasks(): TaskDefinition[] {
  return [noopTask, sleepTask, httpRequestTask];
}

/** Reads at most `max` bytes of the body as UTF-8, then stops downloading the rest. */
async function readCapped(res: Response, max: number): Promise<{ text: string; truncated: boolean }> {
  if (!res.body) return { text: '', truncated: false };
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { text: text + decoder.decode(), truncated: false };
    const room = max - bytes;
    if (value.byteLength > room) {
      text += decoder.decode(value.subarray(0, room)); // a split multi-byte char at the cut becomes U+FFFD
      await reader.cancel();
      return { text, truncated: true };
    }
    bytes += value.byteLength;
    text += decoder.decode(value, { stream: true });
  }
}

/** The URL without credentials or query string: both may hold secrets and end up in job errors. */
function redact(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}

function causeOf(err: unknown): string {
  const cause = err instanceof Error ? (err.cause ?? err) : err;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' ? `${cause.message} (${code})` : cause.message;
  }
  return String(cause);
}
