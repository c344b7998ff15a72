import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '@pgdispatch/core/config';
import { mintWorkerToken } from '@pgdispatch/api/tokens';
import { silentLogger } from '@pgdispatch/core/log';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { startServer, type RunningServer } from '@pgdispatch/server/serve';

// The real hono server on an ephemeral port, in role api, against a real database.
const ADMIN = 'admin-key-000001';
const READER = 'reader-key-00001';
const ENQUEUER = 'enqueue-key-0001';
const SECRET = 'x'.repeat(40);

let db: TestDatabase;
let server: RunningServer;

beforeAll(async () => {
  db = await createTestDatabase();
  const config = parseConfig({
    DISPATCH_ROLE: 'api', DATABASE_URL: db.url, HOST: '127.0.0.1', PORT: '0',
    API_KEYS: `${ADMIN}:admin,${READER}:read,${ENQUEUER}:enqueue`, WORKER_TOKEN_SECRET: SECRET,
    MAX_PAYLOAD_BYTES: '2048', BODY_LIMIT_BYTES: '8192',
  });
  server = await startServer(config, { log: silentLogger });
});
afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

const call = async (method: string, p: string, opts: { key?: string; body?: unknown; raw?: string } = {}) => {
  const h: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.key) h.authorization = `Bearer ${opts.key}`;
  const res = await fetch(`${server.url}${p}`, { method, headers: h, ...(opts.raw !== undefined ? { body: opts.raw } : opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, any>) : {} };
};
const jobCount = async () => (await db.sql<{ n: number }[]>`select count(*)::int as n from jobs`)[0]!.n;

describe('public API auth', () => {
  it('refuses a request without a key with 401', async () => {
    const r = await call('POST', '/v1/queues/a/jobs', { body: { task: 'noop' } });
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('unauthorized');
  });
  it('refuses enqueue with a read-only key with 403', async () => {
    const r = await call('POST', '/v1/queues/a/jobs', { key: READER, body: { task: 'noop' } });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('forbidden');
  });
  it('lets an enqueue key enqueue but not cancel', async () => {
    const r = await call('POST', '/v1/queues/a/jobs', { key: ENQUEUER, body: { task: 'noop' } });
    expect(r.status).toBe(201);
    expect((await call('POST', `/v1/jobs/${r.body.job.id}/cancel`, { key: ENQUEUER })).status).toBe(403);
  });
  it('treats a worker token on /v1 as no key: 401', async () => {
    const token = await mintWorkerToken({ secret: SECRET, queues: '*', ttlSeconds: 60 });
    expect((await call('GET', '/v1/queues', { key: token })).status).toBe(401);
  });
  it('refuses an API key on /internal with 401', async () => {
    expect((await call('POST', '/internal/v1/dequeue', { key: ADMIN, body: { queues: '*', max: 1, waitMs: 0 } })).status).toBe(401);
  });
  it('refuses an expired worker token', async () => {
    const token = await mintWorkerToken({ secret: SECRET, queues: '*', ttlSeconds: -10 });
    const r = await call('POST', '/internal/v1/dequeue', { key: token, body: { queues: '*', max: 1, waitMs: 0 } });
    expect(r.status).toBe(401);
    expect(r.body.error.message).toMatch(/expired/);
  });
  it('refuses a token for queue a pulling queue b with 403', async () => {
    const token = await mintWorkerToken({ secret: SECRET, queues: ['a'], ttlSeconds: 60 });
    const r = await call('POST', '/internal/v1/dequeue', { key: token, body: { queues: ['b'], max: 1, waitMs: 0 } });
    expect(r.status).toBe(403);
    const ok = await call('POST', '/internal/v1/dequeue', { key: token, body: { queues: ['a'], max: 1, waitMs: 0 } });
    expect(ok.status).toBe(200);
  });
  it('refuses a token signed with another secret', async () => {
    const token = await mintWorkerToken({ secret: 'y'.repeat(40), queues: '*', ttlSeconds: 60 });
    expect((await call('POST', '/internal/v1/dequeue', { key: token, body: { queues: '*', max: 1, waitMs: 0 } })).status).toBe(401);
  });
});

describe('bad input gets the documented 4xx and writes nothing', () => {
  it.each([
    ['malformed JSON', { raw: '{"task":' }, 400],
    ['a wrong type', { body: { task: 42 } }, 400],
    ['an unknown field', { body: { task: 'noop', colour: 'red' } }, 400],
    ['a negative delay', { body: { task: 'noop', delayMs: -5 } }, 400],
    ['a priority out of range', { body: { task: 'noop', priority: 1e6 } }, 400],
    ['a payload over MAX_PAYLOAD_BYTES', { body: { task: 'noop', payload: { s: 'x'.repeat(3000) } } }, 413],
    ['a body over BODY_LIMIT_BYTES', { raw: JSON.stringify({ task: 'noop', payload: { s: 'x'.repeat(10_000) } }) }, 413],
  ])('rejects %s', async (_what, input, status) => {
    const before = await jobCount();
    const r = await call('POST', '/v1/queues/bad/jobs', { key: ADMIN, ...input });
    expect(r.status).toBe(status);
    expect(typeof r.body.error.code).toBe('string');
    expect(typeof r.body.error.message).toBe('string');
    expect(JSON.stringify(r.body)).not.toMatch(/at .*\.(ts|js):\d+/); // no stack traces
    expect(await jobCount()).toBe(before);
  });
  it('rejects an oversized chunked body (no Content-Length) with 413', async () => {
    const before = await jobCount();
    const chunk = new TextEncoder().encode(JSON.stringify({ task: 'noop', payload: { s: 'x'.repeat(10_000) } }));
    const body = new ReadableStream({ start(c) { c.enqueue(chunk); c.close(); } });
    const res = await fetch(`${server.url}/v1/queues/bad/jobs`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body, duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
    expect(await jobCount()).toBe(before);
  });
  it('names the zod issues in details', async () => {
    const r = await call('POST', '/v1/queues/bad/jobs', { key: ADMIN, body: { task: 42 } });
    expect(r.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'task' })]));
  });
  it.each(['UPPER', 'a%20b', '..%2F..%2Fetc', `${'q'.repeat(65)}`, '%00x', '-lead'])('rejects the hostile queue name %s', async (name) => {
    const before = await jobCount();
    const r = await call('POST', `/v1/queues/${name}/jobs`, { key: ADMIN, body: { task: 'noop' } });
    expect([400, 404]).toContain(r.status);
    expect(r.body.error.code).toMatch(/invalid_request|not_found/);
    expect(await jobCount()).toBe(before);
  });
  it('answers 404 for an unknown job and 400 for a non-numeric id', async () => {
    expect((await call('GET', '/v1/jobs/999999', { key: ADMIN })).status).toBe(404);
    expect((await call('GET', '/v1/jobs/abc', { key: ADMIN })).status).toBe(400);
  });
});

describe('public API behaviour', () => {
  it('returns 201 then 200 for a repeated idempotency key, with the same job', async () => {
    const body = { task: 'noop', idempotencyKey: 'order-42' };
    const a = await call('POST', '/v1/queues/idem/jobs', { key: ADMIN, body });
    const b = await call('POST', '/v1/queues/idem/jobs', { key: ADMIN, body });
    expect([a.status, b.status]).toEqual([201, 200]);
    expect(b.body.job.id).toBe(a.body.job.id);
    expect(b.body.created).toBe(false);
  });
  it('retrying a queued job is 409 invalid_state naming the state', async () => {
    const a = await call('POST', '/v1/queues/st/jobs', { key: ADMIN, body: { task: 'noop' } });
    const r = await call('POST', `/v1/jobs/${a.body.job.id}/retry`, { key: ADMIN });
    expect(r.status).toBe(409);
    expect(r.body.error).toMatchObject({ code: 'invalid_state', details: { state: 'queued' } });
  });
  it('cancels a waiting job and then retries it', async () => {
    const a = await call('POST', '/v1/queues/st/jobs', { key: ADMIN, body: { task: 'noop', delayMs: 60_000 } });
    expect((await call('POST', `/v1/jobs/${a.body.job.id}/cancel`, { key: ADMIN })).body.job.state).toBe('cancelled');
    expect((await call('POST', `/v1/jobs/${a.body.job.id}/retry`, { key: ADMIN })).body.job.state).toBe('queued');
  });
  it('lists with a cursor and filters by state', async () => {
    for (let i = 0; i < 5; i++) await call('POST', '/v1/queues/list/jobs', { key: ADMIN, body: { task: 'noop' } });
    const p1 = await call('GET', '/v1/jobs?queue=list&limit=3', { key: READER });
    expect(p1.body.jobs).toHaveLength(3);
    const p2 = await call('GET', `/v1/jobs?queue=list&limit=3&cursor=${p1.body.nextCursor}`, { key: READER });
    expect(p2.body.jobs).toHaveLength(2);
    expect(new Set([...p1.body.jobs, ...p2.body.jobs].map((j: { id: number }) => j.id)).size).toBe(5);
    expect((await call('GET', '/v1/jobs?state=bogus', { key: READER })).status).toBe(400);
  });
  it('manages queue policy, pause, resume and stats', async () => {
    const put = await call('PUT', '/v1/queues/policy', { key: ADMIN, body: { concurrencyLimit: 3 } });
    expect(put.body.queue).toMatchObject({ name: 'policy', concurrencyLimit: 3, paused: false });
    expect((await call('POST', '/v1/queues/policy/pause', { key: ADMIN })).body.queue.paused).toBe(true);
    expect((await call('POST', '/v1/queues/policy/resume', { key: ADMIN })).body.queue.paused).toBe(false);
    await call('POST', '/v1/queues/policy/jobs', { key: ADMIN, body: { task: 'noop' } });
    const stats = await call('GET', '/v1/queues/policy/stats', { key: READER });
    expect(stats.body.stats.counts.queued).toBe(1);
    expect((await call('POST', '/v1/queues/nope/pause', { key: ADMIN })).status).toBe(404);
  });
  it('serves /openapi.json generated from the request schemas', async () => {
    const r = await call('GET', '/openapi.json');
    expect(r.body.paths['/v1/queues/{queue}/jobs'].post.requestBody.content['application/json'].schema.properties.task.type).toBe('string');
  });
  it('says in /readyz which queues have no worker (role api executes nothing)', async () => {
    await call('PUT', '/v1/queues/lonely', { key: ADMIN, body: {} });
    const r = await call('GET', '/readyz');
    expect(r.status).toBe(200);
    expect(r.body.queuesWithoutWorkers).toContain('lonely');
    expect(r.body.migrations.current).toBe(true);
  });
  it('exports Prometheus metrics with queue depth', async () => {
    const res = await fetch(`${server.url}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/pgdispatch_queue_depth\{queue="st",state="queued"\} \d+/);
    expect(text).toContain('pgdispatch_jobs_enqueued_total');
  });
  it('streams state changes of a job as server-sent events', async () => {
    const a = await call('POST', '/v1/queues/sse/jobs', { key: ADMIN, body: { task: 'noop', delayMs: 60_000 } });
    const res = await fetch(`${server.url}/v1/jobs/${a.body.job.id}/events`, { headers: { authorization: `Bearer ${READER}` } });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    };
    await readUntil('"state":"queued"');
    await call('POST', `/v1/jobs/${a.body.job.id}/cancel`, { key: ADMIN });
    await readUntil('"state":"cancelled"');
    expect(text).toMatch(/event: state\ndata: .*"state":"queued"/);
    expect(text).toMatch(/event: state\ndata: .*"state":"cancelled"/);
    await reader.cancel();
  });
});

