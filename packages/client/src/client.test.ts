// PgDispatchClient against a real node:http server on an ephemeral port that plays the public
// API's contract (the real api is covered by the end-to-end suite).
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DispatchError } from '@pgdispatch/core/errors';
import { PgDispatchClient } from './client.js';
import { retryAfterMs } from './retry-fetch.js';

interface Seen {
  method: string;
  url: string;
  auth: string | undefined;
  body: unknown;
}
type Handler = (seen: Seen, res: ServerResponse, req: IncomingMessage) => void;

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => { s.closeAllConnections(); s.close(r); })));
});

async function serve(handler: Handler): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, body: text ? JSON.parse(text) : undefined };
      seen.push(s);
      handler(s, res, req);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

const wireJob = {
  id: 12, queue: 'emails', task: 'send', payload: { to: 'a' }, state: 'queued', priority: 0, runAt: '2030-01-01T00:00:00.000Z',
  attempt: 0, maxAttempts: 5, leaseExpiresAt: null, cancelRequested: false, idempotencyKey: 'k1', result: null,
  lastError: null, parentId: null, createdAt: '2029-12-31T00:00:00.000Z', updatedAt: '2029-12-31T00:00:00.000Z', finishedAt: null,
};
const fast = { attempts: 3, baseMs: 1, maxMs: 2 };

describe('PgDispatchClient (real HTTP server)', () => {
  it('enqueues with the API key, sends runAt as ISO and returns Dates', async () => {
    const api = await serve((_s, res) => send(res, 201, { job: wireJob, created: true }));
    const client = new PgDispatchClient({ baseUrl: `${api.url}/`, apiKey: 'key-123456', retry: fast });
    const { job, created } = await client.enqueue('emails', { task: 'send', payload: { to: 'a' }, runAt: new Date('2030-01-01T00:00:00Z'), idempotencyKey: 'k1' });
    expect(created).toBe(true);
    expect(job.runAt).toEqual(new Date('2030-01-01T00:00:00Z'));
    expect(job.finishedAt).toBeNull();
    expect(api.seen[0]).toEqual({
      method: 'POST', url: '/v1/queues/emails/jobs', auth: 'Bearer key-123456',
      body: { task: 'send', payload: { to: 'a' }, runAt: '2030-01-01T00:00:00.000Z', idempotencyKey: 'k1' },
    });
  });

  it('turns an error body into a DispatchError with the server\'s code, without retrying a 4xx', async () => {
    const api = await serve((_s, res) => send(res, 404, { error: { code: 'not_found', message: 'job 9 not found', details: { job: 9 } } }));
    const err = await new PgDispatchClient({ baseUrl: api.url, retry: fast }).getJob(9).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DispatchError);
    expect(err).toMatchObject({ code: 'not_found', message: 'job 9 not found', details: { job: 9 } });
    expect(api.seen).toHaveLength(1);
  });

  it('retries a 503 and then succeeds', async () => {
    let n = 0;
    const api = await serve((_s, res) => (++n === 1 ? send(res, 503, { error: { code: 'unavailable', message: 'db down' } }, { 'retry-after': '0' }) : send(res, 200, { queues: [] })));
    expect(await new PgDispatchClient({ baseUrl: api.url, retry: fast }).listQueues()).toEqual([]);
    expect(api.seen).toHaveLength(2);
  });

  it('encodes list filters and path segments', async () => {
    const api = await serve((_s, res) => send(res, 200, { jobs: [wireJob], nextCursor: 12 }));
    const client = new PgDispatchClient({ baseUrl: api.url, retry: fast });
    const page = await client.listJobs({ queue: 'emails', state: 'failed', limit: 10, cursor: 99 });
    expect(page.nextCursor).toBe(12);
    expect(page.jobs[0]!.createdAt).toBeInstanceOf(Date);
    expect(api.seen[0]!.url).toBe('/v1/jobs?queue=emails&state=failed&limit=10&cursor=99');
    await client.queueStats('a/../b').catch(() => undefined);
    expect(api.seen[1]!.url).toBe('/v1/queues/a%2F..%2Fb/stats');
  });

  it('does not repeat an enqueue without idempotency key after a dropped connection, but does with one', async () => {
    let drop = true;
    const api = await serve((_s, res, req) => {
      if (!drop) return send(res, 201, { job: wireJob, created: true });
      drop = false;
      req.socket.destroy();
    });
    const client = new PgDispatchClient({ baseUrl: api.url, retry: fast });
    await expect(client.enqueue('emails', { task: 'send' })).rejects.toMatchObject({ code: 'unavailable', retryable: false });
    expect(api.seen).toHaveLength(1);
    drop = true;
    await expect(client.enqueue('emails', { task: 'send', idempotencyKey: 'k1' })).resolves.toMatchObject({ created: true });
    expect(api.seen).toHaveLength(3);
  });
});

describe('retryAfterMs', () => {
  it('reads delay-seconds and HTTP dates', () => {
    expect(retryAfterMs('3')).toBe(3_000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });
});
