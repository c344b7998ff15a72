/**
 * Property-based fuzzing of every public and internal route (fast-check), against a real server
 * over HTTP. Used by test/hostile/fuzz.test.ts (a few thousand requests, seeded, with a database
 * checksum around every refusal) and by `npm run chaos` (more requests, against the chaos api
 * processes while they work, counting 5xx).
 *
 * What a request may be: random JSON, wrong types, valid-shaped bodies with hostile fields,
 * huge strings and deep nesting, huge and non-integral numbers, hostile queue/task names, hostile
 * path segments and query strings, malformed JSON text, hostile Authorization headers. With
 * `stored: true` the hostile strings include NUL (U+0000) and lone surrogates and nesting goes
 * past what PostgreSQL accepts — the values issue #10 item 3 is about.
 */
import fc from 'fast-check';

export const ERROR_CODES = ['invalid_request', 'unauthorized', 'forbidden', 'not_found', 'conflict', 'lease_lost', 'invalid_state', 'payload_too_large', 'unavailable', 'internal'];

export interface FuzzTarget {
  url: string;
  apiKey: string;
  workerKey: string;
  /** Job ids that exist (any state) and leases really held, so some requests reach deep code. */
  jobIds: number[];
  leases: { id: number; leaseToken: string }[];
  /** Returns a fingerprint of the database; when given, every refusal must leave it unchanged. */
  checksum?: () => Promise<string>;
}

export interface FuzzRequest {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  auth: 'api' | 'worker' | { raw: string };
  body?: string;
}

export interface FuzzProblem {
  request: FuzzRequest;
  status: number;
  why: string;
  body: string;
}

export interface FuzzStats {
  requests: number;
  byStatus: Record<string, number>;
  fiveXX: number;
  problems: FuzzProblem[];
}

// ---- value generators ----------------------------------------------------------------------

const NAMED_STRINGS = ['', ' ', '..', '../../etc/passwd', '%00', '%2e%2e%2f', "'; drop table jobs; --", '<script>alert(1)</script>', '\r\nX-Injected: 1', '\u202e\u0301', 'ＡＢＣ', '🙂'.repeat(40), 'a'.repeat(300), '*', 'null', '0', '-1', '1e3', '0x10', ' 1', '9'.repeat(40), '__proto__', 'constructor'];
const NAMED_NUMBERS = [0, -0, 1, -1, 0.5, 2 ** 31, 2 ** 31 - 1, -(2 ** 31), 2 ** 53, 2 ** 53 + 2, 2 ** 63, -(2 ** 63), 1e308, -1e308, 5e-324, Number.MAX_SAFE_INTEGER, 32768, -32769, 1001];

const safeChars = (s: string) => !/[\u0000\uD800-\uDFFF]/.test(s);

function strings(stored: boolean): fc.Arbitrary<string> {
  const any = fc.oneof(
    { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
    { weight: 3, arbitrary: fc.constantFrom(...NAMED_STRINGS) },
  );
  // Huge strings are rare per field (a request has many fields) but present in every run.
  const huge = fc.integer({ min: 1_000, max: 100_000 }).map((n) => 'x'.repeat(n));
  const withHuge = fc.oneof({ weight: 60, arbitrary: any }, { weight: 1, arbitrary: huge });
  if (!stored) return withHuge.filter(safeChars);
  return fc.oneof(
    { weight: 1, arbitrary: withHuge },
    { weight: 2, arbitrary: fc.tuple(fc.string({ maxLength: 10 }), fc.constantFrom('\u0000', '\ud800', '\udfff', '\ud83d', 'a\u0000b'), fc.string({ maxLength: 10 })).map(([a, b, c]) => a + b + c) },
  );
}

const numbers = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(...NAMED_NUMBERS));

/** JSON text inserted verbatim by `toJson`: deep nesting that JSON.stringify would overflow on. */
class RawJson {
  constructor(readonly text: string) {}
}

/** Nested arrays/objects `depth` levels deep, as JSON text. */
function deep(depth: number): RawJson {
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    open += i % 2 === 0 ? '[' : '{"k":';
    close = (i % 2 === 0 ? ']' : '}') + close;
  }
  return new RawJson(`${open}"x"${close}`);
}

/** JSON.stringify, except that RawJson values are inserted as they are. */
function toJson(v: unknown): string {
  if (v instanceof RawJson) return v.text;
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : toJson(x))).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const parts = Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`);
    return `{${parts.join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function values(stored: boolean): fc.Arbitrary<unknown> {
  const str = strings(stored);
  const leaf = fc.oneof(str, numbers, fc.boolean(), fc.constant(null));
  const json = fc.letrec((tie) => ({
    v: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(str, tie('v'), { maxKeys: 4 })),
  })).v;
  return fc.oneof(
    { weight: 6, arbitrary: json },
    { weight: 1, arbitrary: fc.integer({ min: 10, max: stored ? 200_000 : 900 }).map((d) => deep(d)) },
    { weight: 1, arbitrary: fc.array(fc.integer(), { minLength: 1_000, maxLength: 5_000 }) },
  );
}

/** A value for a field: usually one of the right type, often a hostile one of any type. */
function field<T>(good: fc.Arbitrary<T>, stored: boolean): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 3, arbitrary: good }, { weight: 2, arbitrary: values(stored) });
}

/** A template object whose keys each may be kept, dropped, or given a hostile value; plus extra keys. */
function shaped(fields: Record<string, fc.Arbitrary<unknown>>, stored: boolean): fc.Arbitrary<Record<string, unknown>> {
  return fc
    .tuple(fc.record(fields, { requiredKeys: [] }), fc.option(fc.dictionary(strings(stored), values(stored), { maxKeys: 2 }), { nil: undefined }))
    .map(([o, extra]) => (extra ? { ...extra, ...o } : o));
}

// ---- request generators ---------------------------------------------------------------------

/** encodeURIComponent, except that lone surrogates (which it refuses) become their 3-byte forms. */
function encodeSegment(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff;
    if (pair) {
      out += encodeURIComponent(s.slice(i, i + 2));
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    } else out += encodeURIComponent(s[i]!);
  }
  return out;
}

function requests(t: FuzzTarget, stored: boolean): fc.Arbitrary<FuzzRequest> {
  const str = strings(stored);
  // Path segments: percent-encoded (lone surrogates as the bytes a CESU encoder would send), and
  // now and then raw invalid escapes that a decoder may choke on.
  const rawSegments = fc.constantFrom('%FF', '%C0%AF', '%', '%zz', '%00', '%E0%A4%A', '%2F..%2F', '.', '..');
  const seg = (good: fc.Arbitrary<string>) =>
    fc.oneof({ weight: 12, arbitrary: fc.oneof({ weight: 3, arbitrary: good }, { weight: 2, arbitrary: str }).map(encodeSegment) }, { weight: 1, arbitrary: rawSegments });
  const queueName = fc.oneof(fc.constantFrom('fuzz', 'fuzz-b', 'q.1', 'a'.repeat(64)), fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}$/));
  const jobId = fc.oneof(
    fc.constantFrom(...(t.jobIds.length ? t.jobIds : [1])).map(String),
    fc.constantFrom(...(t.leases.length ? t.leases.map((l) => l.id) : [1])).map(String),
    fc.nat().map(String),
    fc.constantFrom('0', '-1', '1e3', '0x10', '1.5', '9'.repeat(25), String(2 ** 53 + 1), 'abc'),
  );
  const lease = fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom(...(t.leases.length ? t.leases : [{ id: 1, leaseToken: '00000000-0000-4000-8000-000000000000' }])) },
    { weight: 2, arbitrary: fc.record({ id: fc.oneof(fc.constantFrom(...(t.jobIds.length ? t.jobIds : [1])), fc.nat()), leaseToken: fc.uuid() }) },
  );
  const token = fc.oneof({ weight: 3, arbitrary: lease.map((l) => l.leaseToken) }, { weight: 1, arbitrary: fc.uuid() }, { weight: 1, arbitrary: str });
  const leaseItem = (extra: Record<string, fc.Arbitrary<unknown>>) =>
    fc.oneof(
      { weight: 3, arbitrary: fc.tuple(lease, shaped(extra, stored)).map(([l, e]) => ({ id: l.id, leaseToken: l.leaseToken, ...e })) },
      { weight: 1, arbitrary: shaped({ id: field(fc.nat(), stored), leaseToken: field(fc.uuid(), stored), ...extra }, stored) },
    );
  const items = (extra: Record<string, fc.Arbitrary<unknown>>) =>
    fc.oneof({ weight: 4, arbitrary: shaped({ items: fc.array(leaseItem(extra), { minLength: 1, maxLength: 6 }) }, stored) }, { weight: 1, arbitrary: values(stored) });
  const jobError = shaped({ message: field(str, stored), name: field(str, stored), stack: field(str, stored), details: values(stored), retryable: field(fc.boolean(), stored) }, stored);
  const enqueue = shaped({
    task: field(fc.oneof(fc.constantFrom('noop', 'sleep', 'http.request'), str), stored),
    payload: values(stored),
    priority: field(fc.integer({ min: -32768, max: 32767 }), stored),
    runAt: field(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), stored),
    delayMs: field(fc.nat(), stored),
    maxAttempts: field(fc.integer({ min: 1, max: 1000 }), stored),
    idempotencyKey: field(str, stored),
  }, stored);
  const body = (a: fc.Arbitrary<unknown>) =>
    fc.oneof(
      { weight: 12, arbitrary: a.map((v) => toJson(v)) },
      { weight: 1, arbitrary: fc.constantFrom('', '{', 'null', '[]', '"x"', '{"a":1,}', '\u0000', '{"items":[{"id":1e400}]}', '[' .repeat(100_000) + ']'.repeat(100_000)) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 50 }) },
    );
  const query = fc
    .dictionary(fc.oneof(fc.constantFrom('queue', 'state', 'task', 'deadLettered', 'cursor', 'limit'), str), fc.oneof(str, numbers.map(String)), { maxKeys: 4 })
    .map((q) => new URLSearchParams(q as Record<string, string>).toString());
  const api = (method: FuzzRequest['method'], path: fc.Arbitrary<string>, b?: fc.Arbitrary<unknown>): fc.Arbitrary<FuzzRequest> =>
    b ? fc.tuple(path, body(b)).map(([p, bd]) => ({ method, path: p, auth: 'api' as const, body: bd })) : path.map((p) => ({ method, path: p, auth: 'api' as const }));
  const internal = (path: fc.Arbitrary<string>, b: fc.Arbitrary<unknown>): fc.Arbitrary<FuzzRequest> =>
    fc.tuple(path, body(b)).map(([p, bd]) => ({ method: 'POST' as const, path: p, auth: 'worker' as const, body: bd }));
  const byId = (suffix: string) => jobId.map((id) => `/internal/v1/jobs/${encodeURIComponent(id)}${suffix}`);
  const routes: fc.Arbitrary<FuzzRequest>[] = [
    api('POST', seg(queueName).map((q) => `/v1/queues/${q}/jobs`), enqueue),
    api('POST', seg(queueName).map((q) => `/v1/queues/${q}/jobs/batch`), fc.oneof(shaped({ jobs: fc.array(enqueue, { minLength: 0, maxLength: 5 }) }, stored), values(stored))),
    api('GET', seg(jobId).map((id) => `/v1/jobs/${id}`)),
    api('GET', query.map((q) => `/v1/jobs?${q}`)),
    api('POST', seg(jobId).map((id) => `/v1/jobs/${id}/cancel`)),
    api('POST', seg(jobId).map((id) => `/v1/jobs/${id}/retry`)),
    api('GET', seg(jobId).map((id) => `/v1/jobs/${id}/events`)),
    api('GET', fc.constant('/v1/queues')),
    api('PUT', seg(queueName).map((q) => `/v1/queues/${q}`), shaped({
      concurrencyLimit: field(fc.option(fc.integer({ min: 1, max: 100 }), { nil: null }), stored),
      defaultMaxAttempts: field(fc.integer({ min: 1, max: 1000 }), stored),
      backoffBaseMs: field(fc.nat(), stored),
      backoffMaxMs: field(fc.nat(), stored),
      retentionSeconds: field(fc.option(fc.nat(), { nil: null }), stored),
    }, stored)),
    api('POST', seg(queueName).map((q) => `/v1/queues/${q}/pause`)),
    api('POST', seg(queueName).map((q) => `/v1/queues/${q}/resume`)),
    api('GET', seg(queueName).map((q) => `/v1/queues/${q}/stats`)),
    internal(fc.constant('/internal/v1/dequeue'), shaped({ queues: field(fc.oneof(fc.constant('*'), fc.array(queueName, { minLength: 1, maxLength: 3 })), stored), max: field(fc.integer({ min: 1, max: 5 }), stored), waitMs: field(fc.nat(50), stored) }, stored)),
    internal(fc.constant('/internal/v1/heartbeat'), items({})),
    internal(fc.constant('/internal/v1/release'), items({})),
    internal(fc.constant('/internal/v1/complete'), items({ result: values(stored) })),
    internal(fc.constant('/internal/v1/fail'), items({ error: jobError, retryable: field(fc.boolean(), stored) })),
    internal(byId('/complete'), shaped({ leaseToken: token, result: values(stored) }, stored)),
    internal(byId('/fail'), shaped({ leaseToken: token, error: jobError, retryable: field(fc.boolean(), stored) }, stored)),
    internal(byId('/steps/load'), shaped({ leaseToken: token }, stored)),
    internal(byId('/steps'), shaped({ leaseToken: token, name: field(str, stored), result: values(stored) }, stored)),
    internal(byId('/progress'), shaped({ leaseToken: token, data: values(stored) }, stored)),
    internal(byId('/children'), shaped({
      leaseToken: token,
      key: field(str, stored),
      job: shaped({ queue: field(queueName, stored), task: field(str, stored), payload: values(stored), priority: field(numbers, stored), delayMs: field(fc.nat(), stored), maxAttempts: field(numbers, stored) }, stored),
    }, stored)),
  ];
  const hostileAuth = fc.tuple(fc.constantFrom(...routes), fc.constantFrom('', 'Bearer', 'Bearer ', 'Basic YTpi', `Bearer ${'a'.repeat(5000)}`, 'Bearer eyJhbGciOiJub25lIn0.eyJxdWV1ZXMiOiIqIn0.', 'bearer x y'));
  return fc.oneof(
    { weight: 20, arbitrary: fc.oneof(...routes) },
    { weight: 1, arbitrary: hostileAuth.chain(([r, raw]) => r.map((req) => ({ ...req, auth: { raw } }))) },
  );
}

// ---- the check ---------------------------------------------------------------------------------

async function send(t: FuzzTarget, r: FuzzRequest): Promise<{ status: number; text: string; contentType: string }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const auth = r.auth === 'api' ? `Bearer ${t.apiKey}` : r.auth === 'worker' ? `Bearer ${t.workerKey}` : r.auth.raw;
  if (auth) headers.authorization = auth;
  const ac = new AbortController();
  const res = await fetch(`${t.url}${r.path}`, { method: r.method, headers, ...(r.body !== undefined && r.method !== 'GET' ? { body: r.body } : {}), signal: ac.signal });
  const contentType = res.headers.get('content-type') ?? '';
  if (contentType.startsWith('text/event-stream')) {
    // An event stream of a live job never ends by itself: its status and headers are the answer.
    ac.abort();
    return { status: res.status, text: '', contentType };
  }
  return { status: res.status, text: await res.text(), contentType };
}

/** Why an answer breaks the contract, or null. */
export function contractViolation(status: number, text: string, contentType: string): string | null {
  if (status >= 500) return `status ${status}`;
  if (status < 400) return null;
  if (!contentType.includes('application/json')) return `error with content-type ${contentType || '(none)'}`;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'error body is not JSON';
  }
  const e = (body as { error?: { code?: unknown; message?: unknown } }).error;
  if (!e || typeof e !== 'object') return 'error body has no error object';
  if (typeof e.code !== 'string' || !ERROR_CODES.includes(e.code)) return `unknown error code ${JSON.stringify(e.code)}`;
  if (typeof e.message !== 'string' || e.message.length === 0) return 'error without a message';
  const keys = Object.keys(body as object);
  if (keys.length !== 1) return `error body has extra keys ${keys.join(',')}`;
  const extra = Object.keys(e).filter((k) => !['code', 'message', 'details'].includes(k));
  if (extra.length > 0) return `error object has extra keys ${extra.join(',')}`;
  return null;
}

/**
 * Runs `runs` generated requests (or until `timeLimitMs`) one after another and records every
 * contract violation; never throws on a violation, so callers can count (chaos) or assert (tests).
 */
export async function fuzz(t: FuzzTarget, opts: { runs: number; seed: number; timeLimitMs?: number; stored?: boolean }): Promise<FuzzStats> {
  const stats: FuzzStats = { requests: 0, byStatus: {}, fiveXX: 0, problems: [] };
  let last = t.checksum ? await t.checksum() : '';
  let previous: FuzzRequest | undefined;
  await fc.assert(
    fc.asyncProperty(requests(t, opts.stored ?? false), async (r) => {
      let res: { status: number; text: string; contentType: string };
      try {
        res = await send(t, r);
      } catch (err) {
        stats.requests++;
        stats.problems.push({ request: r, status: 0, why: `no answer: ${String(err)}`, body: '' });
        return;
      }
      stats.requests++;
      stats.byStatus[res.status] = (stats.byStatus[res.status] ?? 0) + 1;
      if (res.status >= 500) stats.fiveXX++;
      const why = contractViolation(res.status, res.text, res.contentType);
      if (why) stats.problems.push({ request: r, status: res.status, why, body: res.text.slice(0, 500) });
      if (t.checksum) {
        // A dequeue that timed out while its claim ran releases the claimed jobs just after it
        // answered: let that settle, then take a fresh baseline (a dequeue is not a refusal).
        if (r.path.endsWith('/dequeue')) {
          let prev = '';
          for (let i = 0; i < 20 && prev !== last; i++) {
            prev = last;
            await new Promise((resolve) => setTimeout(resolve, 25));
            last = await t.checksum();
          }
          previous = r;
          return;
        }
        const now = await t.checksum();
        // The one refusal that writes by design: an unstorable result or error from the lease
        // holder ends the job (docs/architecture.md §4.1), and the answer names the state it got.
        if (res.status >= 400 && now !== last && !endedTheJob(res.text)) {
          stats.problems.push({ request: r, status: res.status, why: `a refusal changed the database (${last} → ${now}; the request before: ${previous ? describeRequest(previous) : 'none'})`, body: res.text.slice(0, 500) });
        }
        last = now;
        previous = r;
      }
    }),
    { numRuns: opts.runs, seed: opts.seed, endOnFailure: true, ...(opts.timeLimitMs !== undefined && { interruptAfterTimeLimit: opts.timeLimitMs, markInterruptAsFailure: false }) },
  );
  return stats;
}

function endedTheJob(text: string): boolean {
  try {
    const details = (JSON.parse(text) as { error?: { details?: { state?: unknown } } }).error?.details;
    return typeof details === 'object' && details !== null && typeof details.state === 'string';
  } catch {
    return false;
  }
}

/** A short, readable description of a request for failure messages. */
export function describeRequest(r: FuzzRequest): string {
  const auth = typeof r.auth === 'string' ? r.auth : `raw:${r.auth.raw.slice(0, 40)}`;
  return `${r.method} ${r.path.slice(0, 200)} [${auth}] ${r.body === undefined ? '' : r.body.slice(0, 300)}`;
}
