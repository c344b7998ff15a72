// The enqueue routes over real HTTP: the real hono app on an ephemeral port, a real database.
// Group commit: concurrent POST /v1/queues/:queue/jobs that wait together share one INSERT and
// one commit (proven by the rows' xmin), and each request is still answered for itself. Batches:
// `?return=ids` answers the same ids and `created` flags as the full form.
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '@pgdispatch/api/app';
import { ControlPlane } from '@pgdispatch/api/control-plane';
import { Dispatcher } from '@pgdispatch/api/dispatcher';
import { Enqueuer } from '@pgdispatch/api/enqueue';
import { JobEvents } from '@pgdispatch/api/job-events';
import { Metrics } from '@pgdispatch/api/metrics';
import { WorkerPresence } from '@pgdispatch/api/worker-presence';
import { PgDispatchClient } from '@pgdispatch/client';
import { silentLogger } from '@pgdispatch/core/log';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';

const KEY = 'group-commit-admin-1';
let db: TestDatabase;
let server: ServerType;
let url: string;
let enqueuer: Enqueuer;
let events: JobEvents;

beforeAll(async () => {
  db = await createTestDatabase();
  const metrics = new Metrics();
  // One group in flight at a time, so the test can hold one and let the others gather.
  enqueuer = new Enqueuer({ sql: db.sql, metrics, maxPayloadBytes: 2_048, maxInFlight: 1 });
  const dispatcher = new Dispatcher({ sql: db.sql, leaseMs: 30_000, batchMax: 100, pollIntervalMs: 1_000, log: silentLogger });
  const presence = new WorkerPresence();
  const control = new ControlPlane({ sql: db.sql, dispatcher, enqueuer, presence, metrics, leaseMs: 30_000, maxPayloadBytes: 2_048 });
  events = new JobEvents({ sql: db.sql, listenSql: db.sql, log: silentLogger });
  const app = createApp({
    sql: db.sql, control, enqueuer, presence, events, metrics, log: silentLogger, version: 'test', role: 'api', listenQueues: [],
    apiKeys: [{ secret: KEY, scopes: ['admin'] }], workerKeys: [], bodyLimitBytes: 65_536, dequeueMaxWaitMs: 1_000,
  });
  ({ server, url } = await new Promise<{ server: ServerType; url: string }>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => resolve({ server: s, url: `http://127.0.0.1:${info.port}` }));
  }));
});
afterAll(async () => {
  await new Promise<void>((resolve) => {
    server?.close(() => resolve());
    (server as unknown as { closeAllConnections?: () => void })?.closeAllConnections?.();
  });
  await events?.stop();
  await db?.drop();
});

async function enqueue(queue: string, body: unknown, path = ''): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/v1/queues/${queue}/jobs${path}`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

async function until(what: string, cond: () => Promise<boolean> | boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Sends `bodies` concurrently while a first request's INSERT is held behind a table lock, waits
 * until `joining` of them wait in the enqueuer, then lets everything go: those form one group.
 */
async function inOneGroup(queue: string, bodies: unknown[], joining: number) {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => (locked = r));
  const holder = db.sql.begin(async (tx) => {
    await tx`lock table jobs in share mode`;
    locked();
    await released;
  });
  await isLocked;
  const plug = enqueue(queue, { task: 'plug' });
  await until('the plug to wait on the lock', async () => {
    const [r] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
       where datname = current_database() and wait_event_type = 'Lock' and query like '%insert into jobs%'`;
    return r!.n === 1;
  });
  const answers = Promise.all(bodies.map((b) => enqueue(queue, b)));
  await until(`${joining} requests to wait for a group`, () => enqueuer.waiting === joining);
  release();
  await holder;
  const plugged = await plug;
  expect(plugged.status).toBe(201);
  return { plug: plugged.body.job.id as number, answers: await answers };
}

const xminOf = async (ids: number[]) => new Set((await db.sql<{ x: string }[]>`select xmin::text as x from jobs where id = any(${ids}::bigint[])`).map((r) => r.x));

describe('group commit of single enqueues', () => {
  it("one request's bad payload never fails another's enqueue in the same group", async () => {
    const { plug, answers } = await inOneGroup('gc-bad', [
      { task: 'ok', payload: { n: 1 } },
      { task: 'ok', payload: { s: 'nul\u0000byte' } },
      { task: 'ok', payload: { big: 'x'.repeat(4_000) } },
      { task: 'ok', priority: 'high' }, // rejected by the schema before it can join
      { task: 'nul\u0000task' },
      { task: 'ok', payload: { n: 2 } },
    ], 5);
    expect(answers.map((a) => a.status)).toEqual([201, 400, 413, 400, 400, 201]);
    expect(answers[1]!.body.error).toMatchObject({ code: 'invalid_request', details: { field: 'payload.s' } });
    expect(answers[2]!.body.error).toMatchObject({ code: 'payload_too_large', details: { limit: 2_048 } });
    expect(answers[3]!.body.error.code).toBe('invalid_request');
    expect(answers[4]!.body.error).toMatchObject({ code: 'invalid_request', details: { field: 'task' } });
    const good = [answers[0]!, answers[5]!].map((a) => a.body.job);
    expect(good.map((j) => j.payload)).toEqual([{ n: 1 }, { n: 2 }]);
    const xmins = await xminOf(good.map((j) => j.id));
    expect(xmins.size).toBe(1); // both written by one statement and commit…
    expect(xmins).not.toEqual(await xminOf([plug])); // …not the plug's
    const [n] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where queue = 'gc-bad'`;
    expect(n!.n).toBe(3);
  });

  it('two requests with one idempotency key (or unique key) in a group: one creates, the other gets that job', async () => {
    const existing = await enqueue('gc-keys', { task: 'ok', idempotencyKey: 'old' });
    const { answers } = await inOneGroup('gc-keys', [
      { task: 'ok', idempotencyKey: 'k', payload: { from: 'a' } },
      { task: 'ok', idempotencyKey: 'k', payload: { from: 'b' } },
      { task: 'ok', uniqueKey: 'u' },
      { task: 'ok', uniqueKey: 'u' },
      { task: 'ok', idempotencyKey: 'old' },
      { task: 'ok' },
    ], 6);
    for (const [a, b] of [[answers[0]!, answers[1]!], [answers[2]!, answers[3]!]] as const) {
      expect([a.status, b.status].sort()).toEqual([200, 201]);
      expect([a.body.created, b.body.created].sort()).toEqual([false, true]);
      expect(a.body.job).toEqual(b.body.job);
    }
    expect(answers[4]).toMatchObject({ status: 200, body: { created: false, job: { id: existing.body.job.id } } });
    expect(answers[5]).toMatchObject({ status: 201, body: { created: true } });
    const rows = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where queue = 'gc-keys' group by coalesce(idempotency_key, unique_key, id::text) order by 1`;
    expect(rows.map((r) => r.n)).toEqual([1, 1, 1, 1, 1]); // plug, old, k, u, keyless: one job each
  });

  it('a lone request is written by itself', async () => {
    const a = await enqueue('gc-lone', { task: 'ok', payload: { n: 1 } });
    const b = await enqueue('gc-lone', { task: 'ok', payload: { n: 2 } });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect((await xminOf([a.body.job.id, b.body.job.id])).size).toBe(2);
  });
});

describe('POST /v1/queues/:queue/jobs/batch?return=ids', () => {
  it('answers { id, created } per item, in order, exactly as the full form would', async () => {
    const jobs = [{ task: 'a', idempotencyKey: 'k1' }, { task: 'b' }, { task: 'c', idempotencyKey: 'k1' }, { task: 'd', uniqueKey: 'u1' }];
    const full = await enqueue('ids', { jobs }, '/batch');
    expect(full.status).toBe(201);
    expect(full.body.results[0].job).toMatchObject({ queue: 'ids', task: 'a', state: 'queued' });
    const again = await enqueue('ids', { jobs }, '/batch?return=ids');
    expect(again.status).toBe(201); // 'b' is new again (no key)
    expect(again.body.results).toEqual([
      { id: full.body.results[0].job.id, created: false },
      { id: expect.any(Number), created: true },
      { id: full.body.results[0].job.id, created: false },
      { id: full.body.results[3].job.id, created: false },
    ]);
    expect(again.body.results[1].id).not.toBe(full.body.results[1].job.id);
    const keyedOnly = await enqueue('ids', { jobs: [jobs[0], jobs[3]] }, '/batch?return=ids');
    expect(keyedOnly).toEqual({ status: 200, body: { results: [{ id: full.body.results[0].job.id, created: false }, { id: full.body.results[3].job.id, created: false }] } });
    const [row] = await db.sql<{ task: string; payload: unknown }[]>`select task, payload from jobs where id = ${again.body.results[1].id}`;
    expect(row).toEqual({ task: 'b', payload: {} });
  });

  it("the client's enqueueBatchIds asks for this form", async () => {
    const client = new PgDispatchClient({ baseUrl: url, apiKey: KEY });
    const res = await client.enqueueBatchIds('ids-client', [{ task: 'a', idempotencyKey: 'c1' }, { task: 'b' }, { task: 'a', idempotencyKey: 'c1' }]);
    expect(res.map((r) => r.created)).toEqual([true, true, false]);
    expect(res[2]!.id).toBe(res[0]!.id);
    const rows = await db.sql<{ id: number; task: string }[]>`select id, task from jobs where queue = 'ids-client' order by id`;
    expect(rows).toEqual([{ id: res[0]!.id, task: 'a' }, { id: res[1]!.id, task: 'b' }]);
  });

  it('keeps the batch rules (one bad item rejects all) and refuses an unknown return value', async () => {
    const before = (await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where queue = 'ids-bad'`)[0]!.n;
    const bad = await enqueue('ids-bad', { jobs: [{ task: 'ok' }, { task: 'ok', payload: { s: 'nul\u0000' } }] }, '/batch?return=ids');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('item 1');
    const shape = await enqueue('ids-bad', { jobs: [{ task: 'ok' }] }, '/batch?return=rows');
    expect(shape.status).toBe(400);
    expect(shape.body.error.code).toBe('invalid_request');
    expect((await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where queue = 'ids-bad'`)[0]!.n).toBe(before);
  });
});
