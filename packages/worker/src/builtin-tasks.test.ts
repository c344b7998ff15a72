// Built-in tasks. http.request runs against a real node:http server on an ephemeral port; the
// job context comes from createJobContext over the in-memory fake transport (no api involved).
import { afterEach, describe, expect, it } from 'vitest';
import { httpRequestTask, noopTask, sleepTask, HTTP_BODY_MAX_BYTES } from './builtin-tasks.js';
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

async function run(payload: unknown, ctx = context()): Promise<unknown> {
  const parsed = httpRequestTask.payload.parse(payload);
  return httpRequestTask.handler(parsed, ctx);
}

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

  it('keeps at most 64 KiB of the response body', async () => {
    const s = await server((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('x'.repeat(HTTP_BODY_MAX_BYTES * 2));
    });
    const result = (await run({ url: s.url, method: 'GET' })) as { body: string; truncated: boolean };
    expect(result.body.length).toBe(HTTP_BODY_MAX_BYTES);
    expect(result.truncated).toBe(true);
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
