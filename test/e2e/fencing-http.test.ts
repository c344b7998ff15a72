// Issue #10 over real HTTP (role api on an ephemeral port, real database) and in-process (the
// ControlPlane as the Transport of role all): per-item queue scope in batches, values PostgreSQL
// cannot store answered per item, and lease tokens kept out of every public answer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '@pgdispatch/core/config';
import { silentLogger } from '@pgdispatch/core/log';
import { mintWorkerToken } from '@pgdispatch/api/tokens';
import { ControlPlane } from '@pgdispatch/api/control-plane';
import { Dispatcher } from '@pgdispatch/api/dispatcher';
import { Enqueuer } from '@pgdispatch/api/enqueue';
import { Metrics } from '@pgdispatch/api/metrics';
import { WorkerPresence } from '@pgdispatch/api/worker-presence';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { claimOne, insertJob } from '@pgdispatch/engine/testing/factories';
import { startServer, type RunningServer } from '@pgdispatch/server/serve';

const SECRET = 'f'.repeat(40);
const READ_KEY = 'fencing-read-key-01';
const ADMIN_KEY = 'fencing-admin-key-1';
let db: TestDatabase;
let server: RunningServer;
let workerA: string;

beforeAll(async () => {
  db = await createTestDatabase();
  const config = parseConfig({
    DISPATCH_ROLE: 'api', DATABASE_URL: db.url, HOST: '127.0.0.1', PORT: '0',
    API_KEYS: `${READ_KEY}:read,${ADMIN_KEY}:admin`, WORKER_TOKEN_SECRET: SECRET, MAX_PAYLOAD_BYTES: '4096',
  });
  server = await startServer(config, { log: silentLogger });
  workerA = await mintWorkerToken({ secret: SECRET, queues: ['qa'], ttlSeconds: 600 });
});
afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

async function call(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; text: string; json: any }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, text, json };
}
const running = async (queue: string) => {
  await insertJob(db.sql, { queue });
  return claimOne(db.sql, queue);
};
const row = async (id: number) => (await db.sql`select * from jobs where id = ${id}`)[0];
const ref = (j: { id: number; leaseToken: string }) => ({ id: j.id, leaseToken: j.leaseToken });

describe('a worker credential acts only on its queues, per item in a batch', () => {
  it('heartbeat, release, complete and fail batches mixing an allowed and a forbidden item answer each for itself', async () => {
    for (const route of ['heartbeat', 'release', 'complete', 'fail'] as const) {
      const mine = await running('qa');
      const theirs = await running('qb');
      const before = await row(theirs.id);
      const extra = route === 'complete' ? { result: { r: 1 } } : route === 'fail' ? { error: { message: 'x' }, retryable: true } : {};
      const res = await call('POST', `/internal/v1/${route}`, workerA, { items: [{ ...ref(theirs), ...extra }, { ...ref(mine), ...extra }] });
      expect(res.status, route).toBe(200);
      expect(res.json.items[0], route).toMatchObject({ id: theirs.id, ok: false, code: 'forbidden' });
      expect(res.json.items[1], route).toMatchObject({ id: mine.id, ok: true });
      expect(await row(theirs.id), route).toEqual(before);
      expect((await row(mine.id))!.state, route).toBe({ heartbeat: 'running', release: 'queued', complete: 'succeeded', fail: 'retry_waiting' }[route]);
    }
  });

  it('single-job routes answer 403 forbidden for a job in another queue, and a child cannot escape through its parent', async () => {
    const theirs = await running('qb');
    const before = await row(theirs.id);
    const qbChildToken = await mintWorkerToken({ secret: SECRET, queues: ['qa'], ttlSeconds: 600 });
    for (const [path, body] of [
      [`/internal/v1/jobs/${theirs.id}/complete`, { leaseToken: theirs.leaseToken, result: 1 }],
      [`/internal/v1/jobs/${theirs.id}/steps`, { leaseToken: theirs.leaseToken, name: 's', result: 1 }],
      [`/internal/v1/jobs/${theirs.id}/children`, { leaseToken: theirs.leaseToken, key: 'k', job: { queue: 'qa', task: 'noop' } }],
    ] as const) {
      const res = await call('POST', path, qbChildToken, body);
      expect(res.status, path).toBe(403);
      expect(res.json.error.code, path).toBe('forbidden');
    }
    expect(await row(theirs.id)).toEqual(before);
    expect((await db.sql`select count(*)::int as n from jobs where parent_id = ${theirs.id}`)[0]!.n).toBe(0);
  });
});

describe('values PostgreSQL cannot store, over HTTP', () => {
  it('a NUL result beside a good one in one complete batch: the good job succeeds, the bad one is answered invalid_request and ends failed', async () => {
    const good = await running('qa');
    const bad = await running('qa');
    const res = await call('POST', '/internal/v1/complete', workerA, { items: [{ ...ref(good), result: { ok: true } }, { ...ref(bad), result: { body: 'GIF\u0000' } }] });
    expect(res.status).toBe(200);
    expect(res.json.items[0]).toEqual({ id: good.id, ok: true });
    expect(res.json.items[1]).toMatchObject({ id: bad.id, ok: false, code: 'invalid_request', details: { field: 'result.body', state: 'failed' } });
    expect(res.json.items[1].message).toContain('result.body contains U+0000');
    expect(await row(good.id)).toMatchObject({ state: 'succeeded', result: { ok: true } });
    expect(await row(bad.id)).toMatchObject({ state: 'failed', result: null, last_error: { name: 'UnstorableResult', retryable: false } });
  });

  it('the single-job routes, steps, progress, children and enqueue answer 400 invalid_request, never a 500', async () => {
    const j = await running('qa');
    const cases: [string, unknown][] = [
      [`/internal/v1/jobs/${j.id}/steps`, { leaseToken: j.leaseToken, name: 's', result: '\u0000' }],
      [`/internal/v1/jobs/${j.id}/progress`, { leaseToken: j.leaseToken, data: { p: '\ud800' } }],
      [`/internal/v1/jobs/${j.id}/children`, { leaseToken: j.leaseToken, key: 'k', job: { queue: 'qa', task: 'noop', payload: ['\u0000'] } }],
      [`/internal/v1/jobs/${j.id}/children`, { leaseToken: j.leaseToken, key: 'k\u0000', job: { queue: 'qa', task: 'noop' } }],
    ];
    for (const [path, body] of cases) {
      const res = await call('POST', path, workerA, body);
      expect(res.status, path).toBe(400);
      expect(res.json.error.code, path).toBe('invalid_request');
    }
    expect((await row(j.id))!.state).toBe('running');
    const enq = await call('POST', '/v1/queues/qa/jobs', ADMIN_KEY, { task: 'noop', payload: { x: '\u0000' } });
    expect(enq.status).toBe(400);
    expect(enq.json.error.message).toContain('payload.x contains U+0000');
    const single = await call('POST', `/internal/v1/jobs/${j.id}/complete`, workerA, { leaseToken: j.leaseToken, result: '\u0000' });
    expect(single.status).toBe(400);
    expect(single.json.error).toMatchObject({ code: 'invalid_request', details: { field: 'result', state: 'failed' } });
  });
});

describe('a NUL result beside a good one, in-process (the ControlPlane as Transport)', () => {
  it('coalesced into one batch, the good completion lands and the bad one is refused and recorded failed', async () => {
    const metrics = new Metrics();
    const control = new ControlPlane({
      sql: db.sql, metrics, leaseMs: 30_000, maxPayloadBytes: 4096, presence: new WorkerPresence(),
      enqueuer: new Enqueuer({ sql: db.sql, metrics, maxPayloadBytes: 4096 }),
      dispatcher: new Dispatcher({ sql: db.sql, leaseMs: 30_000, batchMax: 10, pollIntervalMs: 1_000, log: silentLogger }),
    });
    const good = await running('qa');
    const bad = await running('qa');
    // Pushed in the same turn: the Batcher sends them as one jobCompleteMany.
    const [a, b] = await Promise.all([control.complete({ ...ref(good), result: 'fine' }), control.complete({ ...ref(bad), result: { s: 'x\u0000' } })]);
    expect(a).toEqual({ id: good.id, ok: true });
    expect(b).toMatchObject({ id: bad.id, ok: false, code: 'invalid_request', details: { field: 'result.s', state: 'failed' } });
    expect((await row(good.id))!.state).toBe('succeeded');
    expect((await row(bad.id))!.state).toBe('failed');
  });
});

describe('lease tokens never leave the internal API', () => {
  it('get, list, cancel and the SSE stream of a running job show no leaseToken', async () => {
    const j = await running('qa');
    const got = await call('GET', `/v1/jobs/${j.id}`, READ_KEY);
    expect(got.status).toBe(200);
    expect(got.json.job.state).toBe('running');
    const listed = await call('GET', '/v1/jobs?queue=qa&state=running', READ_KEY);
    expect(listed.json.jobs.some((x: { id: number }) => x.id === j.id)).toBe(true);
    const cancelled = await call('POST', `/v1/jobs/${j.id}/cancel`, ADMIN_KEY);
    expect(cancelled.json.job.cancelRequested).toBe(true);
    // SSE: read the first event of the stream and hang up.
    const ctl = new AbortController();
    const res = await fetch(`${server.url}/v1/jobs/${j.id}/events`, { headers: { authorization: `Bearer ${READ_KEY}` }, signal: ctl.signal });
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    ctl.abort();
    expect(first).toContain('event: state');
    for (const text of [got.text, listed.text, cancelled.text, first]) {
      expect(text).not.toContain('leaseToken');
      expect(text).not.toContain(j.leaseToken);
    }
  });
});
