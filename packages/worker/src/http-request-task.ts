/**
 * The built-in `http.request` task (webhooks), with a destination policy: a job may only make the
 * worker connect where the operator allows (see core's http-destinations: loopback, link-local,
 * private and internal ranges are refused unless HTTP_TASK_ALLOW lists them). Without it, anyone
 * holding an enqueue key could make a worker fetch an internal URL — a cloud metadata endpoint,
 * the api's own /internal routes — and read the answer back from the job's result.
 *
 * The host is resolved once per connection by a custom `lookup` that judges each address DNS
 * returned and hands only allowed ones to the socket, so the address checked is the address
 * connected to (no DNS rebinding between check and connect). IP-literal URLs never reach
 * `lookup` and are judged before the request. Redirects are not followed (a 3xx is a
 * non-retryable failure): following one would mean a second, unchecked destination.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { destinationVerdict, EMPTY_ALLOW_LIST, hostAllowed, type DestinationAllowList } from '@pgdispatch/core/http-destinations';
import { z } from 'zod';
import { NonRetryableError } from './errors.js';
import { defineTask } from './task.js';

/** Default cap on the response body kept in the result, in bytes (HTTP_TASK_MAX_RESPONSE_BYTES). */
export const HTTP_BODY_MAX_BYTES = 64 * 1024;
/** How much of a failed response's body goes into the job's error, in characters. */
const ERROR_BODY_CHARS = 2_048;

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

export interface HttpRequestTaskOptions {
  /** HTTP_TASK_ALLOW: host names and ranges allowed although internal (default none). */
  allow?: DestinationAllowList;
  /** HTTP_TASK_MAX_RESPONSE_BYTES: most body bytes kept in the result (default 64 KiB). */
  maxResponseBytes?: number;
  /** Resolver, for tests (default `dns.lookup`). */
  resolve?: (host: string) => Promise<LookupAddress[]>;
}

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

/** The destination policy said no. Never retried: the same job would be refused again. */
export class DestinationRefusedError extends NonRetryableError {
  constructor(message: string, details: { url: string; host: string; address?: string; reason: string }) {
    super(message, { details });
    this.name = 'DestinationRefusedError';
  }
}

const systemResolve = (host: string) =>
  new Promise<LookupAddress[]>((resolve, reject) => dnsLookup(host, { all: true, verbatim: true }, (err, addrs) => (err ? reject(err) : resolve(addrs))));

/**
 * Builds `http.request` with a destination policy. 2xx returns `{ status, body, truncated }`
 * (body as text; when the body was longer than the cap, `truncated: true` and `keptBytes` say
 * so). The job's `Idempotency-Key` is the same on every attempt, so a receiver can deduplicate a
 * retried delivery. Other statuses fail the job: 5xx, 429, timeouts and network errors are
 * retryable; anything else (and a refused destination) is not.
 */
export function createHttpRequestTask(opts: HttpRequestTaskOptions = {}) {
  const allow = opts.allow ?? EMPTY_ALLOW_LIST;
  const maxBytes = opts.maxResponseBytes ?? HTTP_BODY_MAX_BYTES;
  const resolve = opts.resolve ?? systemResolve;
  return defineTask({
    name: 'http.request',
    payload: httpRequestPayload,
    handler: async (p, ctx) => {
      const url = new URL(p.url);
      const where = redact(url);
      const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      const byName = hostAllowed(host, allow);
      const refuse = (reason: string, address?: string) =>
        new DestinationRefusedError(`http.request refused ${where}: ${reason} (allow it with HTTP_TASK_ALLOW)`, { url: where, host, ...(address !== undefined && { address }), reason });
      if (isIP(host) && !byName) {
        const v = destinationVerdict(host, allow);
        if (!v.allowed) throw refuse(v.reason, host);
      }
      let refusal: DestinationRefusedError | undefined;
      // Called by net.connect for a host name: resolves once, keeps only allowed addresses.
      const lookup = (hostname: string, options: { all?: boolean; family?: number | string }, cb: (...args: unknown[]) => void) => {
        resolve(hostname).then(
          (addrs) => {
            const family = options.family === 4 || options.family === 'IPv4' ? 4 : options.family === 6 || options.family === 'IPv6' ? 6 : 0;
            const candidates = addrs.filter((a) => family === 0 || a.family === family);
            const ok = byName ? candidates : candidates.filter((a) => destinationVerdict(a.address, allow).allowed);
            if (ok.length === 0) {
              const first = candidates[0];
              refusal = refuse(first ? destinationVerdict(first.address, allow).reason : `${hostname} has no address`, first?.address);
              const err = Object.assign(new Error(refusal.message), { code: 'EDESTINATIONREFUSED' });
              return cb(err);
            }
            if (options.all) cb(null, ok);
            else cb(null, ok[0]!.address, ok[0]!.family);
          },
          (err: unknown) => cb(err),
        );
      };

      const headers: Record<string, string> = {};
      try {
        for (const [k, v] of new Headers(p.headers)) headers[k] = v;
      } catch (err) {
        throw new NonRetryableError(`http.request: invalid header: ${causeOf(err)}`);
      }
      headers['idempotency-key'] ??= ctx.idempotencyKey;
      let body: string | undefined;
      if (p.body !== undefined && p.method !== 'GET' && p.method !== 'HEAD') {
        if (typeof p.body === 'string') body = p.body;
        else {
          body = JSON.stringify(p.body);
          headers['content-type'] ??= 'application/json';
        }
      }
      const timeout = AbortSignal.timeout(p.timeoutMs);
      const signal = AbortSignal.any([ctx.signal, timeout]);
      let res: { status: number; text: string; truncated: boolean; keptBytes: number };
      try {
        res = await send(url, { method: p.method, headers, body, signal, lookup, maxBytes });
      } catch (err) {
        if (refusal) throw refusal;
        // A cancel or shutdown is not the endpoint's failure: surface the reason the runtime set.
        if (ctx.signal.aborted) throw ctx.signal.reason;
        const timedOut = timeout.aborted;
        throw new HttpRequestError(timedOut ? `${p.method} ${where} timed out after ${p.timeoutMs} ms` : `${p.method} ${where} failed: ${causeOf(err)}`, {
          retryable: true,
          details: { url: where },
          cause: err,
        });
      }
      if (res.status >= 200 && res.status < 300) {
        return res.truncated ? { status: res.status, body: res.text, truncated: true, keptBytes: res.keptBytes } : { status: res.status, body: res.text, truncated: false };
      }
      const retryable = res.status >= 500 || res.status === 429;
      const details = { status: res.status, body: res.text.slice(0, ERROR_BODY_CHARS), url: where };
      const message = `${p.method} ${where} answered ${res.status}`;
      throw retryable ? new HttpRequestError(message, { retryable, details }) : new NonRetryableError(message, { details });
    },
  });
}

/** `http.request` with the default policy (internal destinations refused, 64 KiB bodies). */
export const httpRequestTask = createHttpRequestTask();

interface SendOptions {
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
  signal: AbortSignal;
  lookup: NonNullable<http.RequestOptions['lookup']> | ((...args: never[]) => void);
  maxBytes: number;
}

/** One request, no redirects; reads at most `maxBytes` of the body, then stops downloading. */
function send(url: URL, o: SendOptions): Promise<{ status: number; text: string; truncated: boolean; keptBytes: number }> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    // A fresh agent per call: a pooled socket would skip `lookup` and reuse an earlier address.
    const req = mod.request(url, { method: o.method, headers: o.headers, signal: o.signal, lookup: o.lookup as http.RequestOptions['lookup'], agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      let truncated = false;
      res.on('data', (chunk: Buffer) => {
        if (truncated) return;
        const room = o.maxBytes - kept;
        if (chunk.byteLength > room) {
          chunks.push(chunk.subarray(0, room));
          kept += room;
          truncated = true;
          res.destroy();
          finish();
          return;
        }
        chunks.push(chunk);
        kept += chunk.byteLength;
      });
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        // A multi-byte character split at the cut becomes U+FFFD.
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), truncated, keptBytes: kept });
      };
      res.on('end', finish);
      res.on('error', (err) => (truncated ? finish() : reject(err)));
      res.on('close', () => (res.complete ? finish() : truncated ? finish() : reject(new Error('response ended early'))));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

/** The URL without credentials or query string: both may hold secrets and end up in job errors. */
function redact(u: URL): string {
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
