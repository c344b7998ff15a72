import { get as httpGet } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '@pgdispatch/core/config';
import { mintWorkerToken } from '@pgdispatch/api/tokens';
import { silentLogger } from '@pgdispatch/core/log';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { insertJob } from '@pgdispatch/engine/testing/factories';
import { startServer, type RunningServer } from '@pgdispatch/server/serve';

// The public endpoints the dashboard reads, and the dashboard's static files, on the real server
// (role api, ephemeral port, real database).
const ADMIN = 'admin-key-000001';
const READER = 'reader-key-00001';
const ENQUEUER = 'enqueue-key-0001';
const SECRET = 's'.repeat(40);

let db: TestDatabase;
let server: RunningServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startServer(parseConfig({
    DISPATCH_ROLE: 'api', DATABASE_URL: db.url, HOST: '127.0.0.1', PORT: '0',
    API_KEYS: `${ADMIN}:admin,${READER}:read,${ENQUEUER}:enqueue`, WORKER_TOKEN_SECRET: SECRET,
  }), { log: silentLogger });
});
afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

const get = async (p: string, key?: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`${server.url}${p}`, { headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers } });
  return res;
};
const getJson = async (p: string, key?: string) => {
  const res = await get(p, key);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

describe('GET /v1/whoami', () => {
  it.each([
    ['no key', undefined, 200, { authenticated: false, open: false, scopes: [] }],
    ['a read key', READER, 200, { authenticated: true, open: false, scopes: ['read'] }],
    ['an enqueue key', ENQUEUER, 200, { authenticated: true, open: false, scopes: ['enqueue'] }],
    ['an admin key (every scope)', ADMIN, 200, { authenticated: true, open: false, scopes: ['admin', 'enqueue', 'read'] }],
  ])('answers %s with its scopes', async (_label, key, status, body) => {
    const r = await getJson('/v1/whoami', key);
    expect(r.status).toBe(status);
    expect(r.body).toEqual(body);
  });
  it('refuses an unknown key and a worker token with 401', async () => {
    expect((await getJson('/v1/whoami', 'not-a-key-at-all')).status).toBe(401);
    const token = await mintWorkerToken({ secret: SECRET, queues: '*', ttlSeconds: 60 });
    expect((await getJson('/v1/whoami', token)).body.error.code).toBe('unauthorized');
  });
});

describe('GET /v1/stats/queues and /v1/stats/throughput', () => {
  it('counts every queue by state, with the oldest runnable age and whether a worker listens', async () => {
    await db.sql`insert into queues (name, concurrency_limit, paused, rate_limit, rate_interval_ms) values ('st-a', 2, true, 10, 60000), ('st-b', null, false, null, 1000)`;
    for (const state of ['queued', 'queued', 'running', 'succeeded', 'failed'] as const) await insertJob(db.sql, { queue: 'st-a', state, runAtOffsetMs: -5_000 });
    await insertJob(db.sql, { queue: 'st-b', state: 'retry_waiting', runAtOffsetMs: 60_000 });
    const r = await getJson('/v1/stats/queues', READER);
    expect(r.status).toBe(200);
    const a = r.body.queues.find((q: { name: string }) => q.name === 'st-a');
    const b = r.body.queues.find((q: { name: string }) => q.name === 'st-b');
    expect(a).toMatchObject({ paused: true, concurrencyLimit: 2, rateLimit: 10, rateIntervalMs: 60_000, counts: { queued: 2, running: 1, succeeded: 1, failed: 1, retry_waiting: 0, cancelled: 0 }, workersListening: false });
    expect(a.oldestWaitingSeconds).toBeGreaterThan(4);
    expect(b).toMatchObject({ rateLimit: null, counts: { retry_waiting: 1, queued: 0 }, oldestWaitingSeconds: 0, workersListening: false });
    expect(r.body.tasksWithoutWorkers).toEqual(['noop']); // waiting, and no executor has asked yet
  });

  it('marks a queue attended once a worker long-polls it, and lists that worker', async () => {
    const token = await mintWorkerToken({ secret: SECRET, queues: ['st-b'], ttlSeconds: 60, subject: 'pod-7' });
    const dq = await fetch(`${server.url}/internal/v1/dequeue`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ queues: ['st-b'], max: 1, waitMs: 0 }) });
    expect(dq.status).toBe(200);
    const r = await getJson('/v1/stats/queues', READER);
    expect(r.body.queues.find((q: { name: string }) => q.name === 'st-b').workersListening).toBe(true);
    expect(r.body.queues.find((q: { name: string }) => q.name === 'st-a').workersListening).toBe(false);
    expect(r.body.tasksWithoutWorkers).toEqual([]); // that worker declared no tasks: '*', any task
    const w = await getJson('/v1/workers', READER);
    expect(w.status).toBe(200);
    expect(w.body.presenceSeconds).toBe(60);
    expect(w.body.workers).toEqual([expect.objectContaining({ tier: 'http', subject: 'pod-7', queues: ['st-b'], waiting: false })]);
    expect(Date.now() - Date.parse(w.body.workers[0].lastSeenAt)).toBeLessThan(10_000);
  });

  it('buckets finished jobs per minute by outcome, oldest first', async () => {
    await db.sql`insert into jobs (queue, task, state, finished_at) values
      ('tp', 'noop', 'succeeded', now() - interval '30 seconds'), ('tp', 'noop', 'succeeded', now() - interval '20 seconds'),
      ('tp', 'noop', 'failed', now() - interval '10 seconds'), ('tp', 'noop', 'succeeded', now() - interval '150 seconds'),
      ('tp', 'noop', 'succeeded', now() - interval '2 hours'), ('tp', 'noop', 'cancelled', now() - interval '5 seconds')`;
    const r = await getJson('/v1/stats/throughput?windowSeconds=600&bucketSeconds=60', READER);
    expect(r.status).toBe(200);
    expect(r.body.bucketSeconds).toBe(60);
    expect(r.body.queues.tp).toEqual({ succeeded: [0, 0, 0, 0, 0, 0, 0, 1, 0, 2], failed: [0, 0, 0, 0, 0, 0, 0, 0, 0, 1] });
    const hour = await getJson('/v1/stats/throughput', READER);
    expect(hour.body.queues.tp.succeeded).toHaveLength(60);
  });

  it.each(['windowSeconds=61&bucketSeconds=60', 'windowSeconds=86400&bucketSeconds=10', 'bucketSeconds=0', 'extra=1', 'windowSeconds=abc'])('refuses the query %s with 400', async (q) => {
    const r = await getJson(`/v1/stats/throughput?${q}`, READER);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid_request');
  });

  it('needs the read scope', async () => {
    for (const p of ['/v1/stats/queues', '/v1/stats/throughput', '/v1/workers']) {
      expect((await getJson(p)).status).toBe(401);
      expect((await getJson(p, ENQUEUER)).status).toBe(403);
    }
  });
});

describe('job steps, children and time filters', () => {
  it('lists a job’s steps and its children, and filters by creation time', async () => {
    const parent = await insertJob(db.sql, { queue: 'fam', state: 'running' });
    const [child] = await db.sql<{ id: number }[]>`insert into jobs (queue, task, parent_id) values ('fam', 'noop', ${parent.id}) returning id`;
    await db.sql`insert into job_steps (job_id, name, result, attempt) values (${parent.id}, 'fetch', '{"rows":3}', 1)`;
    const steps = await getJson(`/v1/jobs/${parent.id}/steps`, READER);
    expect(steps.body.steps).toEqual([expect.objectContaining({ name: 'fetch', result: { rows: 3 }, attempt: 1 })]);
    expect((await getJson('/v1/jobs/999999/steps', READER)).status).toBe(404);
    const kids = await getJson(`/v1/jobs?parent=${parent.id}`, READER);
    expect(kids.body.jobs.map((j: { id: number }) => j.id)).toEqual([child!.id]);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect((await getJson(`/v1/jobs?queue=fam&createdAfter=${encodeURIComponent(future)}`, READER)).body.jobs).toEqual([]);
    expect((await getJson(`/v1/jobs?queue=fam&createdBefore=${encodeURIComponent(future)}`, READER)).body.jobs).toHaveLength(2);
    expect((await getJson('/v1/jobs?createdAfter=yesterday', READER)).status).toBe(400);
  });
});

/** Reads an SSE response until `done(text)` holds (or 10 s pass), then closes it. */
async function readSse(res: Response, done: (text: string) => boolean): Promise<string> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  const deadline = setTimeout(() => void reader.cancel(), 10_000);
  try {
    while (!done(text)) {
      const { done: end, value } = await reader.read();
      if (end) break;
      text += value;
    }
  } finally {
    clearTimeout(deadline);
    await reader.cancel().catch(() => {});
  }
  return text;
}
const eventIds = (text: string) => [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
const eventJobs = (text: string) => [...text.matchAll(/^data: (.*)$/gm)].map((m) => (JSON.parse(m[1]!) as { jobId: number }).jobId);

describe('GET /v1/events: every queue in one stream', () => {
  it('starts at now without Last-Event-ID, delivers live events of every queue, and resumes after an id', async () => {
    const old = await insertJob(db.sql, { queue: 'ev-a' });
    // Notifications come in commit order: once a later job's event came through a first stream,
    // the server has seen the notification of `old` too, so it cannot reach the stream under test late.
    const first = await get('/v1/events', READER);
    const marker = await insertJob(db.sql, { queue: 'ev-marker' });
    await readSse(first, (t) => eventJobs(t).includes(marker.id));
    const res = await get('/v1/events', READER);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const a = await insertJob(db.sql, { queue: 'ev-a' });
    const b = await insertJob(db.sql, { queue: 'ev-b' });
    const text = await readSse(res, (t) => eventJobs(t).includes(a.id) && eventJobs(t).includes(b.id));
    // The job enqueued before the stream opened is not replayed; both later ones arrive.
    expect(eventJobs(text)).toEqual([a.id, b.id]);
    const firstId = eventIds(text)[0]!;
    const resumed = await get('/v1/events', READER, { 'last-event-id': String(firstId) });
    const replay = await readSse(resumed, (t) => eventJobs(t).includes(b.id));
    expect(eventJobs(replay)).toEqual([b.id]);
    expect((await getJson('/v1/events', ENQUEUER)).status).toBe(403);
  });
});

describe('GET /v1/jobs?deadLettered', () => {
  it('lists only dead-lettered jobs with true, only the others with false', async () => {
    const dead = await insertJob(db.sql, { queue: 'dlq-list', state: 'failed' });
    const plain = await insertJob(db.sql, { queue: 'dlq-list', state: 'failed' });
    await db.sql`update jobs set dead_letter_from = 'dlq-src' where id = ${dead.id}`;
    const only = await getJson('/v1/jobs?queue=dlq-list&deadLettered=true', READER);
    expect(only.body.jobs.map((j: { id: number; deadLetterFrom: string }) => [j.id, j.deadLetterFrom])).toEqual([[dead.id, 'dlq-src']]);
    const others = await getJson('/v1/jobs?queue=dlq-list&deadLettered=false', READER);
    expect(others.body.jobs.map((j: { id: number }) => j.id)).toEqual([plain.id]);
    expect((await getJson('/v1/jobs?deadLettered=yes', READER)).status).toBe(400);
  });
});

describe('the dashboard at /', () => {
  it('serves index.html with a strict CSP, no framing and no caching', async () => {
    const res = await get('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const html = await res.text();
    // No inline script or style: every <script> has a src, no style= attribute, no <style>.
    expect(html).toMatch(/<script type="module" crossorigin src="\/assets\/[^"]+\.js"><\/script>/);
    expect(html.match(/<script(?![^>]*\ssrc=)[^>]*>/g)).toBeNull();
    expect(html).not.toMatch(/<style|\sstyle=/);
  });

  it('serves hashed assets with their content type, gzip, a year of caching and ETag revalidation', async () => {
    const html = await (await get('/')).text();
    const js = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const css = /href="(\/assets\/[^"]+\.css)"/.exec(html)![1]!;
    const plain = await get(js);
    expect(plain.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(plain.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const body = Buffer.from(await plain.arrayBuffer());
    // fetch() would decode gzip itself: read the bytes on the wire with node:http.
    const wire = await new Promise<{ encoding: string | undefined; bytes: Buffer }>((resolve, reject) => {
      httpGet(`${server.url}${js}`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ encoding: res.headers['content-encoding'], bytes: Buffer.concat(chunks) }));
      }).on('error', reject);
    });
    expect(wire.encoding).toBe('gzip');
    expect(wire.bytes.length).toBeLessThan(body.length / 2);
    expect(gunzipSync(wire.bytes).equals(body)).toBe(true);
    expect((await get(css)).headers.get('content-type')).toBe('text/css; charset=utf-8');
    const etag = plain.headers.get('etag')!;
    const again = await get(js, undefined, { 'if-none-match': etag });
    expect(again.status).toBe(304);
  });

  it('keeps the API’s JSON 404 for paths that are not dashboard files', async () => {
    const r = await getJson('/assets/nope.js');
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('not_found');
    expect((await getJson('/v1/nope', ADMIN)).status).toBe(404);
  });
});
