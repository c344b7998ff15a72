// Built-in tasks. http.request runs against a real node:http server on an ephemeral port; the
// job context comes from createJobContext over the in-memory fake transport (no api involved).
import { afterEach, describe, expect, it } from 'vitest';
import { parseAllowList } from '@pgdispatch/core/http-destinations';
import { builtinTasks, noopTask, sleepTask, HTTP_BODY_MAX_BYTES } from './builtin-tasks.js';
import { createHttpRequestTask, type HttpRequestTaskOptions } from './http-request-task.js';
import { createJobContext } from './context.js';
import type { JobContext } from './context.js';
import { declaresNonRetryable, JobCancelledError } from './errors.js';
import { silentLogger } from '@pgdispatch/core/log';
import { WorkerRuntime } from './runtime.js';
import { FakeTransport, waitFor } from './testing/fake-transport.js';
import { json, startTestServer } from './testing/http-server.js';
import type { Responder, TestServer } from './testing/http-server.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(respond: Responder): Promise<TestServer> {
  const s = await startTestServer(respond);
  servers.push(s);
  return s;
}

function context(id = 42, signal = new AbortController().signal): JobContext {
  const t = new FakeTransport();
  const [job] = t.claimNow({ id, task: 'http.request' });
  return createJobContext({ job: job!, transport: t, signal, log: silentLogger });
}

// The test servers listen on 127.0.0.1, which the default policy refuses: these tests allow it.
const allowLoopback = { allow: parseAllowList('127.0.0.1').list };
const httpRequestTask = createHttpRequestTask(allowLoopback);

async function run(payload: unknown, ctx = context(), task = httpRequestTask): Promise<unknown> {
  const parsed = task.payload.parse(payload);
  return task.handler(parsed, ctx);
}

const withPolicy = (opts: HttpRequestTaskOptions) => createHttpRequestTask(opts);

describe('http.request', () => {
  it('POSTs JSON with the job\'s Idempotency-Key and returns status and body', async () => {
    const s = await server((_req, res) => json(res, 201, { received: true }));
    const result = await run({ url: `${s.url}/hooks/a?sig=secret`, body: { event: 'paid' }, headers: { 'x-custom': '1' } }, context(42));
    expect(result).toEqual({ status: 201, body: '{"received":true}', truncated: false });
    const [req] = s.requests;
    expect(req).toMatchObject({ method: 'POST', path: '/hooks/a?sig=secret', body: { event: 'paid' } });
    expect(req!.headers['idempotency-key']).toBe('pgdispatch-job-42');
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.headers['x-custom']).toBe('1');
  });

  it('sends the same Idempotency-Key on every attempt of a job', async () => {
    const s = await server((_req, res) => json(res, 200, {}));
    await run({ url: s.url }, context(7));
    await run({ url: s.url }, context(7));
    expect(s.requests.map((r) => r.headers['idempotency-key'])).toEqual(['pgdispatch-job-7', 'pgdispatch-job-7']);
  });

  it('a 500 is a retryable failure', async () => {
    const s = await server((_req, res) => json(res, 500, { oops: true }));
    const err = await run({ url: s.url }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'HttpRequestError', retryable: true, details: { status: 500 } });
    expect(declaresNonRetryable(err)).toBe(false);
  });

  it('a 429 is a retryable failure', async () => {
    const s = await server((_req, res) => json(res, 429, {}));
    const err = await run({ url: s.url }).catch((e: unknown) => e);
    expect(declaresNonRetryable(err)).toBe(false);
  });

  it('a 404 is a non-retryable failure, with the query string kept out of the error', async () => {
    const s = await server((_req, res) => json(res, 404, { error: 'no such hook' }));
    const err = await run({ url: `${s.url}/x?token=secret`, method: 'PUT' }).catch((e: unknown) => e);
    expect(declaresNonRetryable(err)).toBe(true);
    expect(err).toMatchObject({ name: 'NonRetryableError', details: { status: 404, body: '{"error":"no such hook"}' } });
    expect(String((err as Error).message)).not.toContain('secret');
  });

  it('a timeout is a retryable failure', async () => {
    const s = await server(() => {
      // never answers
    });
    const err = await run({ url: s.url, timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'HttpRequestError', retryable: true, message: expect.stringMatching(/timed out/) });
  });

  it('keeps at most 64 KiB of the response body by default, and says it cut', async () => {
    const s = await server((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('x'.repeat(HTTP_BODY_MAX_BYTES * 2));
    });
    const result = (await run({ url: s.url, method: 'GET' })) as { body: string; truncated: boolean; keptBytes: number };
    expect(result.body.length).toBe(HTTP_BODY_MAX_BYTES);
    expect(result).toMatchObject({ truncated: true, keptBytes: HTTP_BODY_MAX_BYTES });
  });

  it('HTTP_TASK_MAX_RESPONSE_BYTES sets the cap; a body under it is whole and unmarked', async () => {
    const s = await server((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(req.path === '/big' ? 'y'.repeat(5_000) : 'small');
    });
    const task = withPolicy({ ...allowLoopback, maxResponseBytes: 1_000 });
    expect(await run({ url: `${s.url}/big`, method: 'GET' }, context(), task)).toEqual({ status: 200, body: 'y'.repeat(1_000), truncated: true, keptBytes: 1_000 });
    expect(await run({ url: `${s.url}/small`, method: 'GET' }, context(), task)).toEqual({ status: 200, body: 'small', truncated: false });
  });

  it('does not follow redirects: a 302 is a non-retryable failure', async () => {
    const s = await server((_req, res) => {
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
      res.end();
    });
    const err = await run({ url: s.url, method: 'GET' }).catch((e: unknown) => e);
    expect(declaresNonRetryable(err)).toBe(true);
    expect(err).toMatchObject({ details: { status: 302 } });
    expect(s.requests).toHaveLength(1);
  });

  it('through the runtime: a 500 fails the job retryable, a 404 fails it for good', async () => {
    const s = await server((req, res) => json(res, req.path === '/gone' ? 404 : 500, {}));
    const t = new FakeTransport();
    const [a, b] = t.push({ task: 'http.request', payload: { url: `${s.url}/flaky` } }, { task: 'http.request', payload: { url: `${s.url}/gone` } });
    const rt = new WorkerRuntime({ transport: t, tasks: [httpRequestTask], dequeueWaitMs: 100 });
    rt.start();
    try {
      await waitFor(() => t.failed.size === 2);
    } finally {
      await rt.stop();
    }
    expect(t.failed.get(a!.id)?.retryable).toBe(true);
    expect(t.failed.get(b!.id)?.retryable).toBe(false);
  });

  it('rejects payloads that are not http(s) URLs', () => {
    expect(httpRequestTask.payload.safeParse({ url: 'file:///etc/passwd' }).success).toBe(false);
    expect(httpRequestTask.payload.safeParse({ url: 'http://x', extra: 1 }).success).toBe(false);
  });
});

describe('http.request destination policy', () => {
  const refused = (err: unknown) => {
    expect(err).toMatchObject({ name: 'DestinationRefusedError' });
    expect(declaresNonRetryable(err)).toBe(true);
    return err as Error & { details: { reason: string; address?: string } };
  };

  it('refuses a loopback URL by default, and the server never sees a request', async () => {
    const s = await server((_req, res) => json(res, 200, { secret: 'internal' }));
    const err = refused(await run({ url: s.url, method: 'GET' }, context(), createHttpRequestTask()).catch((e: unknown) => e));
    expect(err.message).toMatch(/loopback/);
    expect(err.message).toMatch(/HTTP_TASK_ALLOW/);
    expect(s.requests).toHaveLength(0);
  });

  it('refuses a name that resolves to loopback (localhost), through the lookup', async () => {
    const s = await server((_req, res) => json(res, 200, {}));
    const port = new URL(s.url).port;
    const err = refused(await run({ url: `http://localhost:${port}/`, method: 'GET' }, context(), createHttpRequestTask()).catch((e: unknown) => e));
    expect(err.details.reason).toMatch(/loopback/);
    expect(s.requests).toHaveLength(0);
  });

  it.each([
    ['http://169.254.169.254/latest/meta-data/', 'link-local'],
    ['http://[::ffff:127.0.0.1]:9/', 'loopback'],
    ['http://[::1]:9/', 'loopback'],
    ['http://10.0.0.1:9/', 'private'],
    ['http://192.168.0.1:9/', 'private'],
    ['http://0.0.0.0:9/', 'this network'],
    ['http://2130706433:9/', 'loopback'], // the URL parser turns this into 127.0.0.1
  ])('refuses %s before connecting', async (url, what) => {
    const err = refused(await run({ url, method: 'GET', timeoutMs: 60_000 }, context(), createHttpRequestTask()).catch((e: unknown) => e));
    expect(err.details.reason).toContain(what);
  });

  it('connects to the address its lookup checked, never resolving again (no DNS rebinding)', async () => {
    const s = await server((_req, res) => json(res, 200, { hi: 1 }));
    const port = new URL(s.url).port;
    const answers = [[{ address: '127.0.0.1', family: 4 }]];
    let calls = 0;
    const resolve = async () => answers[Math.min(calls++, answers.length - 1)]!;
    // hooks.invalid exists in no DNS: the request can only reach the server through our lookup.
    const task = withPolicy({ allow: parseAllowList('127.0.0.1').list, resolve });
    expect(await run({ url: `http://hooks.invalid:${port}/`, method: 'GET' }, context(), task)).toMatchObject({ status: 200 });
    expect(calls).toBe(1);
    expect(s.requests[0]!.headers.host).toBe(`hooks.invalid:${port}`);
    // The same name now "rebinds" to loopback while only a public range is allowed: refused.
    const strict = withPolicy({ resolve: async () => [{ address: '127.0.0.1', family: 4 }] });
    refused(await run({ url: `http://hooks.invalid:${port}/`, method: 'GET' }, context(), strict).catch((e: unknown) => e));
    expect(s.requests).toHaveLength(1);
  });

  it('of several addresses, only allowed ones are used', async () => {
    const s = await server((_req, res) => json(res, 200, {}));
    const port = new URL(s.url).port;
    const task = withPolicy({ allow: parseAllowList('127.0.0.1').list, resolve: async () => [{ address: '10.0.0.1', family: 4 }, { address: '127.0.0.1', family: 4 }] });
    expect(await run({ url: `http://multi.invalid:${port}/`, method: 'GET' }, context(), task)).toMatchObject({ status: 200 });
  });

  it('HTTP_TASK_ALLOW by host name allows whatever that name resolves to', async () => {
    const s = await server((_req, res) => json(res, 200, {}));
    const port = new URL(s.url).port;
    const task = withPolicy({ allow: parseAllowList('hooks.internal').list, resolve: async () => [{ address: '127.0.0.1', family: 4 }] });
    expect(await run({ url: `http://hooks.internal:${port}/x`, method: 'GET' }, context(), task)).toMatchObject({ status: 200 });
    refused(await run({ url: `http://other.internal:${port}/x`, method: 'GET' }, context(), task).catch((e: unknown) => e));
  });

  it('HTTP_TASK_ALLOW by address lets a real loopback request through', async () => {
    const s = await server((_req, res) => json(res, 200, { ok: true }));
    expect(await run({ url: s.url, method: 'GET' }, context(), withPolicy({ allow: parseAllowList('127.0.0.0/8').list }))).toMatchObject({ status: 200, body: '{"ok":true}' });
  });
});

describe('BUILTIN_TASKS selection', () => {
  it('builtinTasks picks the named tasks; none is an empty list', () => {
    expect(builtinTasks().map((t) => t.name)).toEqual(['noop', 'sleep', 'http.request']);
    expect(builtinTasks({ names: ['noop', 'sleep'] }).map((t) => t.name)).toEqual(['noop', 'sleep']);
    expect(builtinTasks({ names: [] })).toEqual([]);
  });
});

describe('noop and sleep', () => {
  it('noop returns ok', async () => {
    expect(await noopTask.handler(undefined, context())).toEqual({ ok: true });
  });

  it('sleep stops at once when the signal aborts', async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    const p = sleepTask.handler(sleepTask.payload.parse({ ms: 10_000 }), context(1, ac.signal));
    setTimeout(() => ac.abort(new JobCancelledError(1)), 20);
    await expect(p).rejects.toBeInstanceOf(JobCancelledError);
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it('sleep refuses more than 10 minutes', () => {
    expect(sleepTask.payload.safeParse({ ms: 600_001 }).success).toBe(false);
  });
});
