// HttpTransport against a real node:http server on an ephemeral port (not the pgdispatch api:
// the end-to-end suite covers that). Proves the wire contract, retries and error mapping.
import { afterEach, describe, expect, it } from 'vitest';
import { DispatchError } from '@pgdispatch/core/errors';
import { HttpTransport } from './http-transport.js';
import { json, startTestServer } from './testing/http-server.js';
import type { Responder, TestServer } from './testing/http-server.js';

const TOKEN = 'worker-token-0123456789';
const LEASE = '6f1c1f4e-4d0b-4b53-9a7e-2f1d2f0b9c11';
const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function setup(respond: Responder, retry = { attempts: 4, baseMs: 1, maxMs: 5 }) {
  const server = await startTestServer(respond);
  servers.push(server);
  return { server, transport: new HttpTransport({ apiUrl: `${server.url}/`, token: TOKEN, retry }) };
}

describe('HttpTransport (real HTTP server)', () => {
  it('dequeues with bearer auth and the contract body, converting leaseExpiresAt to a Date', async () => {
    const { server, transport } = await setup((req, res) =>
      json(res, 200, {
        jobs: [{ id: 5, queue: 'emails', task: 'send', payload: { to: 'a' }, attempt: 1, maxAttempts: 5, leaseToken: LEASE, leaseExpiresAt: '2030-01-01T00:00:00.000Z' }],
      }),
    );
    const jobs = await transport.dequeue({ queues: ['emails'], max: 8, waitMs: 1000 });
    expect(jobs).toEqual([
      { id: 5, queue: 'emails', task: 'send', payload: { to: 'a' }, attempt: 1, maxAttempts: 5, leaseToken: LEASE, leaseExpiresAt: new Date('2030-01-01T00:00:00.000Z') },
    ]);
    const [req] = server.requests;
    expect(req).toMatchObject({ method: 'POST', path: '/internal/v1/dequeue', body: { queues: ['emails'], max: 8, waitMs: 1000 } });
    expect(req!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(req!.headers['content-type']).toBe('application/json');
  });

  it('declares tasks, and falls back to a dequeue without them against an api that predates task routing', async () => {
    // What an older api's strict schema answers for the unknown field (the api's issue format).
    const { server, transport } = await setup((req, res) => {
      if (req.body && typeof req.body === 'object' && 'tasks' in req.body) {
        return json(res, 400, { error: { code: 'invalid_request', message: 'invalid body', details: [{ path: '', message: 'Unrecognized key: "tasks"', code: 'unrecognized_keys' }] } });
      }
      json(res, 200, { jobs: [] });
    });
    expect(await transport.dequeue({ queues: '*', tasks: ['send'], max: 2, waitMs: 10 })).toEqual([]);
    expect(await transport.dequeue({ queues: '*', tasks: ['send'], max: 2, waitMs: 10 })).toEqual([]);
    expect(server.requests.map((r) => r.body)).toEqual([
      { queues: '*', tasks: ['send'], max: 2, waitMs: 10 },
      { queues: '*', max: 2, waitMs: 10 },
      { queues: '*', max: 2, waitMs: 10 },
    ]);
  });

  it('does not mistake another 400 for an old api', async () => {
    const { server, transport } = await setup((_req, res) =>
      json(res, 400, { error: { code: 'invalid_request', message: 'invalid body', details: [{ path: 'tasks.0', message: 'Invalid string', code: 'invalid_format' }] } }),
    );
    await expect(transport.dequeue({ queues: '*', tasks: ['bad name'], max: 1, waitMs: 10 })).rejects.toMatchObject({ code: 'invalid_request' });
    expect(server.requests).toHaveLength(1);
  });

  it('retries a 503 (honouring Retry-After) and then succeeds', async () => {
    let calls = 0;
    const { server, transport } = await setup((_req, res) => {
      calls++;
      if (calls < 3) return json(res, 503, { error: { code: 'unavailable', message: 'database unreachable' } }, { 'retry-after': '0' });
      json(res, 200, { items: [{ id: 1, ok: true, cancelRequested: true }] });
    });
    const replies = await transport.heartbeat([{ id: 1, leaseToken: LEASE }]);
    expect(replies).toEqual([{ id: 1, ok: true, cancelRequested: true }]);
    expect(server.requests).toHaveLength(3);
    expect(server.requests.every((r) => r.path === '/internal/v1/heartbeat')).toBe(true);
  });

  it('waits as long as Retry-After says', async () => {
    let calls = 0;
    const { transport } = await setup((_req, res) => {
      calls++;
      if (calls === 1) return json(res, 503, { error: { code: 'unavailable', message: 'x' } }, { 'retry-after': '1' });
      json(res, 200, { ok: true });
    });
    const t0 = Date.now();
    await transport.progress({ id: 3, leaseToken: LEASE, data: { pct: 50 } });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
  });

  it('gives up with unavailable after the last 503', async () => {
    const { server, transport } = await setup((_req, res) => json(res, 503, { error: { code: 'unavailable', message: 'down' } }));
    const err = await transport.loadSteps({ id: 2, leaseToken: LEASE }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DispatchError);
    expect(err).toMatchObject({ code: 'unavailable', message: 'down' });
    expect(server.requests).toHaveLength(4);
  });

  it('never retries a 400 and maps the error body to a DispatchError', async () => {
    const { server, transport } = await setup((_req, res) =>
      json(res, 400, { error: { code: 'invalid_request', message: 'bad body', details: [{ path: ['name'] }] } }),
    );
    const err = await transport.saveStep({ id: 9, leaseToken: LEASE, name: 'a', result: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DispatchError);
    expect(err).toMatchObject({ code: 'invalid_request', message: 'bad body', details: [{ path: ['name'] }] });
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]).toMatchObject({ path: '/internal/v1/jobs/9/steps', body: { leaseToken: LEASE, name: 'a', result: 1 } });
  });

  it('maps lease_lost to an outcome for complete and fail, and throws it for lease-scoped calls', async () => {
    const { server, transport } = await setup((req, res) =>
      req.path === '/internal/v1/complete' || req.path === '/internal/v1/fail'
        ? json(res, 200, { items: [{ id: 4, ok: false, code: 'lease_lost' }] })
        : json(res, 409, { error: { code: 'lease_lost', message: 'lease on job 4 is no longer held' } }),
    );
    expect(await transport.complete({ id: 4, leaseToken: LEASE, result: { a: 1 } })).toEqual({ id: 4, ok: false, code: 'lease_lost' });
    expect(await transport.fail({ id: 4, leaseToken: LEASE, error: { message: 'x' }, retryable: true })).toEqual({ id: 4, ok: false, code: 'lease_lost' });
    await expect(transport.progress({ id: 4, leaseToken: LEASE, data: 1 })).rejects.toMatchObject({ code: 'lease_lost' });
    await expect(transport.enqueueChild({ id: 4, leaseToken: LEASE, key: 'call:0', job: { queue: 'q', task: 't' } })).rejects.toMatchObject({ code: 'lease_lost' });
    expect(server.requests.map((r) => r.path)).toEqual([
      '/internal/v1/complete',
      '/internal/v1/fail',
      '/internal/v1/jobs/4/progress',
      '/internal/v1/jobs/4/children',
    ]);
    expect(server.requests[0]!.body).toEqual({ items: [{ id: 4, leaseToken: LEASE, result: { a: 1 } }] });
    expect(server.requests[1]!.body).toEqual({ items: [{ id: 4, leaseToken: LEASE, error: { message: 'x' }, retryable: true }] });
  });

  it('coalesces completions issued together into one request, with outcomes per item', async () => {
    const { server, transport } = await setup((req, res) => {
      const items = (req.body as { items: { id: number }[] }).items;
      return json(res, 200, { items: items.map((i) => (i.id === 2 ? { id: 2, ok: false, code: 'lease_lost' } : { id: i.id, ok: true })) });
    });
    const out = await Promise.all([1, 2, 3].map((id) => transport.complete({ id, leaseToken: LEASE, result: id })));
    expect(out).toEqual([{ id: 1, ok: true }, { id: 2, ok: false, code: 'lease_lost' }, { id: 3, ok: true }]);
    expect(server.requests).toHaveLength(1);
    expect((server.requests[0]!.body as { items: unknown[] }).items).toHaveLength(3);
  });

  it('reads per-item outcomes of release and the reply of fail and children', async () => {
    const { transport } = await setup((req, res) => {
      if (req.path === '/internal/v1/release') return json(res, 200, { items: [{ id: 1, ok: true }, { id: 2, ok: false, code: 'lease_lost' }] });
      if (req.path === '/internal/v1/fail') return json(res, 200, { items: [{ id: 3, ok: true, state: 'retry_waiting' }] });
      return json(res, 201, { jobId: 77, created: true });
    });
    expect(await transport.release([{ id: 1, leaseToken: LEASE }, { id: 2, leaseToken: LEASE }])).toEqual([
      { id: 1, ok: true },
      { id: 2, ok: false, code: 'lease_lost' },
    ]);
    expect(await transport.fail({ id: 3, leaseToken: LEASE, error: { message: 'e' }, retryable: true })).toEqual({ id: 3, ok: true, state: 'retry_waiting' });
    expect(await transport.enqueueChild({ id: 3, leaseToken: LEASE, key: 'k', job: { queue: 'q', task: 't' } })).toEqual({ jobId: 77, created: true });
  });

  it('aborting a dequeue aborts the HTTP request and resolves with no jobs', async () => {
    const { server, transport } = await setup(() => {
      // Never answer: a long-poll with nothing to deliver.
    });
    const ac = new AbortController();
    const pending = transport.dequeue({ queues: '*', max: 4, waitMs: 30_000, signal: ac.signal });
    await expect.poll(() => server.requests.length).toBe(1);
    ac.abort();
    expect(await pending).toEqual([]);
    await expect.poll(() => server.requests[0]!.aborted).toBe(true);
  });

  it('retries a refused connection and reports unavailable when the api stays down', async () => {
    const { server } = await setup((_req, res) => json(res, 200, {}));
    const url = server.url;
    await server.close();
    servers.length = 0;
    const transport = new HttpTransport({ apiUrl: url, token: TOKEN, retry: { attempts: 2, baseMs: 1, maxMs: 2 } });
    await expect(transport.heartbeat([{ id: 1, leaseToken: LEASE }])).rejects.toMatchObject({ code: 'unavailable', details: { attempts: 2 } });
  });

  it('rejects a response that does not match the contract', async () => {
    const { transport } = await setup((_req, res) => json(res, 200, { jobs: [{ id: 'x' }] }));
    await expect(transport.dequeue({ queues: '*', max: 1, waitMs: 0 })).rejects.toMatchObject({ code: 'internal' });
  });
});
