// createApp's routes on a real database, through hono's own request handling (the HTTP listener
// is exercised by test/e2e and the conformance suite): which routes exist, which credential each
// wants, and how failures map to statuses.
import { silentLogger } from '@pgdispatch/core/log';
import { useTestDatabase } from '@pgdispatch/engine/testing/database';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from './app.js';
import { ControlPlane } from './control-plane.js';
import { Dispatcher } from './dispatcher.js';
import { Enqueuer } from './enqueue.js';
import { JobEvents } from './job-events.js';
import { Metrics } from './metrics.js';
import { WorkerPresence } from './worker-presence.js';
import type { Hono } from 'hono';

const db = useTestDatabase();
const WORKER = 'worker-key-for-queue-a-000000';
const ADMIN = 'admin-key-000001';
let app: Hono;

beforeAll(async () => {
  const metrics = new Metrics();
  const dispatcher = new Dispatcher({ sql: db.sql, leaseMs: 30_000, batchMax: 100, pollIntervalMs: 1_000, log: silentLogger });
  const enqueuer = new Enqueuer({ sql: db.sql, metrics, maxPayloadBytes: 1_024 });
  const presence = new WorkerPresence();
  const control = new ControlPlane({ sql: db.sql, dispatcher, enqueuer, presence, metrics, leaseMs: 30_000, maxPayloadBytes: 1_024 });
  app = createApp({
    sql: db.sql, control, enqueuer, presence, events: new JobEvents({ sql: db.sql, listenSql: db.sql, log: silentLogger }), metrics, log: silentLogger, version: 'test', role: 'api', listenQueues: [],
    apiKeys: [{ secret: ADMIN, scopes: ['admin'] }], workerKeys: [{ secret: WORKER, queues: ['a'] }], bodyLimitBytes: 4_096, dequeueMaxWaitMs: 1_000,
  });
});

async function call(method: string, path: string, opts: { key?: string; body?: unknown; raw?: string } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  const body = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  const res = await app.request(path, { method, headers, ...(body !== undefined && { body }) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) as any };
}

describe('createApp', () => {
  it('serves health, readiness with unattended queues, metrics and the OpenAPI document without credentials', async () => {
    expect(await call('GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    await call('POST', '/v1/queues/unattended/jobs', { key: ADMIN, body: { task: 'noop' } });
    const ready = await call('GET', '/readyz');
    expect(ready).toMatchObject({ status: 200, body: { status: 'ready', database: 'ok', role: 'api' } });
    expect(ready.body.queuesWithoutWorkers).toContain('unattended');
    expect((await call('GET', '/metrics')).body).toMatch(/pgdispatch_jobs_enqueued_total\{queue="unattended"\} 1/);
    expect((await call('GET', '/openapi.json')).body.paths).toHaveProperty(['/v1/queues/{queue}/jobs']);
  });

  it('guards /v1 with API keys and /internal/v1 with worker credentials, and does not mix them', async () => {
    expect((await call('GET', '/v1/queues')).status).toBe(401);
    expect((await call('GET', '/v1/queues', { key: WORKER })).status).toBe(401);
    expect((await call('POST', '/internal/v1/dequeue', { key: ADMIN, body: { queues: ['a'], max: 1, waitMs: 0 } })).status).toBe(401);
    expect((await call('GET', '/v1/queues', { key: ADMIN })).status).toBe(200);
  });

  it('maps bad input to 400, unknown jobs to 404, too-large bodies to 413, a queue outside the credential to 403', async () => {
    expect(await call('POST', '/v1/queues/a/jobs', { key: ADMIN, raw: '{not json' })).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
    expect(await call('GET', '/v1/jobs/1e3', { key: ADMIN })).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
    expect(await call('GET', '/v1/jobs/999999', { key: ADMIN })).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await call('POST', '/v1/queues/a/jobs', { key: ADMIN, raw: JSON.stringify({ task: 'noop', payload: 'x'.repeat(5_000) }) })).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
    expect(await call('POST', '/internal/v1/dequeue', { key: WORKER, body: { queues: ['b'], max: 1, waitMs: 0 } })).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
    expect(await call('POST', '/nowhere', { key: ADMIN })).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
  });

  it('runs a job through the internal routes: dequeue, a stale token is 409 lease_lost, the holder completes it', async () => {
    const created = await call('POST', '/v1/queues/a/jobs', { key: ADMIN, body: { task: 'noop', payload: { n: 1 } } });
    expect(created).toMatchObject({ status: 201, body: { created: true, job: { state: 'queued' } } });
    const id = created.body.job.id as number;
    const dq = await call('POST', '/internal/v1/dequeue', { key: WORKER, body: { queues: ['a'], max: 5, waitMs: 0 } });
    expect(dq).toMatchObject({ status: 200, body: { jobs: [{ id, attempt: 1, payload: { n: 1 } }] } });
    const token = dq.body.jobs[0].leaseToken as string;
    const stale = await call('POST', `/internal/v1/jobs/${id}/complete`, { key: WORKER, body: { leaseToken: '00000000-0000-4000-8000-000000000000' } });
    expect(stale).toMatchObject({ status: 409, body: { error: { code: 'lease_lost', details: { id } } } });
    expect(await call('POST', `/internal/v1/jobs/${id}/complete`, { key: WORKER, body: { leaseToken: token, result: { ok: 1 } } })).toMatchObject({ status: 200, body: { id, ok: true } });
    expect(await call('GET', `/v1/jobs/${id}`, { key: ADMIN })).toMatchObject({ status: 200, body: { job: { state: 'succeeded', result: { ok: 1 } } } });
  });
});
