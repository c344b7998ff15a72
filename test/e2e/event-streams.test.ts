import { execFile } from 'node:child_process';
import http from 'node:http';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgDispatchClient } from '@pgdispatch/client/client';
import type { WireJobEvent } from '@pgdispatch/client/events';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { storedEvents } from '@pgdispatch/engine/testing/factories';
import { startPgProxy, type PgProxy } from '../helpers/pg-proxy.js';
import { CLI, spawnServer, TASKS, waitFor, type ServerProcess } from '../helpers/processes.js';

// Two api processes and a worker process, all real: the worker reports through api A, streams are
// read from api B, whose database connections go through a counting proxy. Enqueues carry
// idempotency keys so the client may retry one after a keep-alive connection reset.
const API_KEY = 'events-admin-key-01';
const WORKER_KEY = 'events-worker-key-0000000001';
// No background statements on api B while the idle window is measured (the vacuum check runs every 5 s).
const QUIET = { REAPER_INTERVAL_MS: '600000', SCHEDULER_INTERVAL_MS: '600000', VACUUM_DEAD_ROWS: '0', POLL_INTERVAL_MS: '200', SSE_KEEPALIVE_MS: '500' };

let db: TestDatabase;
let proxy: PgProxy;
let apiA: ServerProcess;
let apiB: ServerProcess;
let worker: ServerProcess;
let a: PgDispatchClient;
let b: PgDispatchClient;

beforeAll(async () => {
  db = await createTestDatabase();
  proxy = await startPgProxy(db.url);
  const api = { DISPATCH_ROLE: 'api', API_KEYS: `${API_KEY}:admin`, WORKER_KEYS: `${WORKER_KEY}:*`, ...QUIET };
  [apiA, apiB] = await Promise.all([spawnServer({ ...api, DATABASE_URL: db.url }), spawnServer({ ...api, DATABASE_URL: proxy.url, DATABASE_POOL_MAX: '4' })]);
  worker = await spawnServer({ DISPATCH_ROLE: 'worker', API_URL: apiA.url, WORKER_TOKEN: WORKER_KEY, TASKS_MODULE: TASKS, LISTEN_QUEUES: 'ev', WORKER_CONCURRENCY: '8' });
  a = new PgDispatchClient({ baseUrl: apiA.url, apiKey: API_KEY });
  b = new PgDispatchClient({ baseUrl: apiB.url, apiKey: API_KEY });
}, 120_000);

afterAll(async () => {
  await worker?.kill('SIGKILL');
  await Promise.all([apiA?.kill('SIGTERM'), apiB?.kill('SIGTERM')]);
  await proxy?.close();
  await db?.drop();
});

async function collect(it: AsyncIterable<WireJobEvent>, until?: (events: WireJobEvent[]) => boolean): Promise<WireJobEvent[]> {
  const out: WireJobEvent[] = [];
  for await (const e of it) {
    out.push(e);
    if (until?.(out)) break;
  }
  return out;
}
const stateOf = (e: WireJobEvent) => (e.type === 'state' ? (e.data as { state: string }).state : e.type);
const storedIds = async (where: { jobId?: number; queue?: string }) => (await storedEvents(db.sql, where)).map((e) => e.id);

describe('job event streams across api processes', () => {
  it('streams a job run by a worker on api A from api B: states and progress in order, then ends', async () => {
    const { job } = await a.enqueue('ev', { task: 'test.progress', payload: { total: 5, ms: 30 }, idempotencyKey: 'k1' });
    const events = await collect(b.jobEvents(job.id));
    expect(events.map(stateOf)).toEqual(['queued', 'running', 'progress', 'progress', 'progress', 'progress', 'progress', 'succeeded']);
    expect(events.filter((e) => e.type === 'progress').map((e) => e.data)).toEqual([1, 2, 3, 4, 5].map((current) => ({ current, total: 5 })));
    expect(events.map((e) => e.id)).toEqual(await storedIds({ jobId: job.id }));
    expect((await b.getJob(job.id)).progress).toEqual({ current: 5, total: 5 });
  });

  it('resumes after Last-Event-ID with exactly the events that followed it', async () => {
    const { job } = await a.enqueue('ev', { task: 'test.progress', payload: { total: 3, ms: 10 }, idempotencyKey: 'k2' });
    const all = await collect(b.jobEvents(job.id));
    const resumed = await collect(b.jobEvents(job.id, { lastEventId: all[2]!.id }));
    expect(resumed).toEqual(all.slice(3));
    // A raw EventSource-style request: id lines, the Last-Event-ID header, and a clean end.
    const res = await fetch(`${apiB.url}/v1/jobs/${job.id}/events`, { headers: { authorization: `Bearer ${API_KEY}`, 'last-event-id': String(all.at(-2)!.id) } });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    expect(await res.text()).toBe(`event: state\ndata: ${JSON.stringify(all.at(-1))}\nid: ${all.at(-1)!.id}\n\n`);
  });

  it('a queue stream opened while jobs run gets every stored event once: no gap or repeat at the replay/live switch', async () => {
    const first = await a.enqueueBatch('ev', Array.from({ length: 150 }, (_, i) => ({ task: 'test.progress', payload: { total: 2, ms: 20 }, idempotencyKey: `b${i}` })));
    const ids = new Set(first.map((r) => r.job.id));
    const ctl = new AbortController();
    // Opened mid-run: part of the history is replayed, the rest arrives live.
    await waitFor(async () => (await storedIds({ queue: 'ev' })).length > 200, { what: 'the run to be under way' });
    const streamed = collect(b.queueEvents('ev', { signal: ctl.signal }), (got) => got.filter((e) => ids.has(e.jobId) && stateOf(e) === 'succeeded').length === ids.size).catch((e: unknown) => {
      if (!ctl.signal.aborted) throw e;
      return [] as WireJobEvent[];
    });
    const got = await streamed;
    ctl.abort();
    const stored = await storedIds({ queue: 'ev' });
    const gotIds = got.map((e) => e.id);
    expect(new Set(gotIds).size).toBe(gotIds.length);
    // Everything stored up to the last event we received was received.
    const last = Math.max(...gotIds);
    expect([...gotIds].sort((x, y) => x - y)).toEqual(stored.filter((id) => id <= last));
    for (const id of ids) {
      const mine = got.filter((e) => e.jobId === id);
      expect(mine.map(stateOf)).toEqual(['queued', 'running', 'progress', 'progress', 'succeeded']);
      expect(mine.map((e) => e.id)).toEqual([...mine.map((e) => e.id)].sort((x, y) => x - y));
    }
  });

  it('pgdispatch jobs watch prints the stream with a progress bar, the result, and exits 0', async () => {
    const { job } = await a.enqueue('ev', { task: 'test.progress', payload: { total: 3, ms: 20 }, idempotencyKey: 'k3' });
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'jobs', 'watch', String(job.id)], {
      env: { PATH: process.env.PATH ?? '', PGDISPATCH_URL: apiB.url, PGDISPATCH_API_KEY: API_KEY },
    });
    const lines = stdout.trim().split('\n').map((l) => l.replace(/^\d\d:\d\d:\d\d\.\d{3} /, ''));
    expect(lines).toEqual([
      'queued (attempt 0)', 'running (attempt 1)',
      expect.stringMatching(/^progress \[█{8}░{16}\]  33% 1\/3$/), expect.stringMatching(/ 66% 2\/3$/), expect.stringMatching(/ 100% 3\/3$/),
      'succeeded (attempt 1)', 'result: {"total":3}',
    ]);
  });

  it('answers 401 without a key, 400 for a malformed Last-Event-ID, 404 for an unknown job or queue', async () => {
    const { job } = await a.enqueue('ev-none', { task: 'noop', delayMs: 3_600_000, idempotencyKey: 'k4' });
    const get = (p: string, h: Record<string, string> = { authorization: `Bearer ${API_KEY}` }) => fetch(`${apiB.url}${p}`, { headers: h });
    expect((await get(`/v1/jobs/${job.id}/events`, {})).status).toBe(401);
    const bad = await get(`/v1/jobs/${job.id}/events`, { authorization: `Bearer ${API_KEY}`, 'last-event-id': '1e3' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('invalid_request');
    expect((await get(`/v1/queues/ev-none/events?lastEventId=x`)).status).toBe(400);
    expect((await get('/v1/jobs/999999/events')).status).toBe(404);
    expect((await get('/v1/queues/no-such-queue/events')).status).toBe(404);
    expect((await get('/v1/queues/BAD!/events')).status).toBe(400);
  });
});

describe('idle streams', () => {
  it('1,000 idle streams on one api process cost no statements; one event reaches all of them with one fetch', async () => {
    const { job } = await a.enqueue('ev-idle', { task: 'noop', delayMs: 3_600_000, idempotencyKey: 'k5' });
    const bodies: string[] = [];
    const reqs: http.ClientRequest[] = [];
    const open = (p: string, i: number) =>
      new Promise<void>((resolve, reject) => {
        const req = http.get(`${apiB.url}${p}`, { agent: false, headers: { authorization: `Bearer ${API_KEY}` } }, (res) => {
          if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
          bodies[i] = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            bodies[i] += d;
            if (bodies[i]!.includes('\n\n')) resolve(); // the replayed `queued` event
          });
        });
        req.on('error', reject);
        reqs.push(req);
      });
    try {
      for (let i = 0; i < 1000; i += 100) {
        await Promise.all(Array.from({ length: 100 }, (_, k) => open(i + k < 500 ? `/v1/jobs/${job.id}/events` : '/v1/queues/ev-idle/events', i + k)));
      }
      const metrics = await (await fetch(`${apiB.url}/metrics`)).text();
      expect(metrics).toMatch(/^pgdispatch_event_streams 1000$/m);
      // Let the opening settle (each stream's two queries), then measure a quiet window.
      let settled = proxy.statements();
      await waitFor(async () => {
        await new Promise((r) => setTimeout(r, 500));
        const now = proxy.statements();
        return now === settled || ((settled = now), false);
      }, { what: 'the stream openings to settle', timeoutMs: 20_000 });
      const before = proxy.statements();
      const window = 3_000;
      await new Promise((r) => setTimeout(r, window));
      const idle = proxy.statements() - before;
      process.stdout.write(`[figure] 1000 idle SSE streams on one api process: ${idle} statements to PostgreSQL in ${window} ms\n`);
      expect(idle, proxy.recent().join('\n')).toBe(0);
      expect(bodies.every((t) => t.includes(': keep-alive'))).toBe(true); // alive, just quiet
      // One state change: one notification, one fetch by api B, 1,000 streams served.
      await a.cancelJob(job.id);
      await waitFor(() => bodies.every((t) => t.includes('"state":"cancelled"')), { what: 'every stream to get the cancel', timeoutMs: 20_000 });
      const fanOut = proxy.statements() - before;
      expect(fanOut).toBe(1);
    } finally {
      for (const r of reqs) r.destroy();
    }
  });
});
