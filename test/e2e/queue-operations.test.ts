import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { storedEvents } from '@pgdispatch/engine/testing/factories';
import { spawnServer, TASKS, waitFor, type ServerProcess } from '../helpers/processes.js';

// Two real `all` processes (api + dispatcher + executor each) on one database: the rate limit
// must hold across both, and the operations routes are exercised over HTTP.
const ADMIN = 'ops-admin-key-0001';
const READER = 'ops-reader-key-001';

let db: TestDatabase;
let dir: string;
const pods: ServerProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(path.join(tmpdir(), 'pgdispatch-ops-'));
  const env = { DISPATCH_ROLE: 'all', DATABASE_URL: db.url, API_KEYS: `${ADMIN}:admin,${READER}:read`, TASKS_MODULE: TASKS, POLL_INTERVAL_MS: '50', WORKER_CONCURRENCY: '16' };
  pods.push(...(await Promise.all([spawnServer(env), spawnServer(env)])));
}, 120_000);
afterAll(async () => {
  await Promise.all(pods.map((p) => p.kill('SIGTERM')));
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

async function call(pod: number, method: string, p: string, body?: unknown, key = ADMIN) {
  const res = await fetch(`${pods[pod]!.url}${p}`, { method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, ...(body !== undefined && { body: JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, any> };
}

describe('rate limit across two api processes', () => {
  it('claims never outrun the token bucket; the achieved rate matches the limit', async () => {
    const LIMIT = 20;
    const JOBS = 120;
    expect((await call(0, 'PUT', '/v1/queues/rl', { rateLimit: LIMIT, rateIntervalMs: 1000 })).body.queue).toMatchObject({ rateLimit: LIMIT, rateIntervalMs: 1000 });
    const file = path.join(dir, 'rl.log');
    const res = await call(1, 'POST', '/v1/queues/rl/jobs/batch', { jobs: Array.from({ length: JOBS }, (_, i) => ({ task: 'test.stamp', payload: { file }, idempotencyKey: `rl-${i}` })) });
    expect(res.status).toBe(201);
    await waitFor(async () => (await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where queue = 'rl' and state = 'succeeded'`)[0]!.n === JOBS,
      { timeoutMs: 30_000, what: 'every rate-limited job to finish' });
    // t0: the first claim's transaction start (at or before the first claim). Then each handler's
    // start (after its claim): the k-th earliest start is no earlier than the k-th claim, so a
    // bound that holds for these times holds for the claims.
    const t0 = Math.min(...(await storedEvents(db.sql, { queue: 'rl' })).filter((e) => (e.data as { state?: string }).state === 'running').map((e) => e.createdAt.getTime()));
    const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => l.split(' '));
    expect(lines).toHaveLength(JOBS);
    const starts = lines.map((l) => Number(l[2])).sort((a, b) => a - b);
    // Token bucket (capacity LIMIT, refill LIMIT/s): by time t at most LIMIT + LIMIT·(t − t0) claims.
    starts.forEach((t, i) => expect(i + 1, `start ${i + 1} at +${((t - t0) / 1000).toFixed(3)} s`).toBeLessThanOrEqual(LIMIT + (LIMIT * (t - t0)) / 1000));
    const span = (starts.at(-1)! - t0) / 1000;
    const achieved = (JOBS - LIMIT) / span; // the first LIMIT are the initial burst
    process.stdout.write(`[figure] rate limit ${LIMIT}/s across 2 api processes: ${JOBS} jobs in ${span.toFixed(2)} s, achieved ${achieved.toFixed(2)}/s after the burst of ${LIMIT}\n`);
    expect(achieved).toBeLessThanOrEqual(LIMIT * 1.05);
    expect(achieved).toBeGreaterThanOrEqual(LIMIT * 0.75);
    // Both processes claimed: the budget is shared, not per pod.
    expect(new Set(lines.map((l) => l[1])).size).toBe(2);
    const metrics = (await (await fetch(`${pods[0]!.url}/metrics`)).text()) + (await (await fetch(`${pods[1]!.url}/metrics`)).text());
    expect(metrics).toMatch(/pgdispatch_rate_limited_claims_total\{queue="rl"\} [1-9]/);
  });
});

describe('dead letters, redrive, bulk operations and unique keys over HTTP', () => {
  it('a failed job moves to the dead-letter queue, shows in metrics, and redrive runs it again', async () => {
    expect((await call(0, 'PUT', '/v1/queues/dlx', { deadLetterQueue: 'dlx-dead', defaultMaxAttempts: 1 })).body.queue).toMatchObject({ deadLetterQueue: 'dlx-dead' });
    // Paused, so the dead letters wait there instead of being run by the executors.
    expect((await call(0, 'POST', '/v1/queues/dlx-dead/pause')).status).toBe(200);
    const { body } = await call(0, 'POST', '/v1/queues/dlx/jobs', { task: 'test.fail' });
    const id = body.job.id as number;
    const dead = await waitFor(async () => {
      const j = (await call(1, 'GET', `/v1/jobs/${id}`, undefined, READER)).body.job;
      return j.queue === 'dlx-dead' && j.state === 'failed' ? j : undefined;
    }, { what: 'the job to be dead-lettered' });
    expect(dead).toMatchObject({ deadLetterFrom: 'dlx', attempt: 1 });
    expect(await (await fetch(`${pods[1]!.url}/metrics`)).text()).toMatch(/^pgdispatch_dead_letter_jobs\{queue="dlx-dead"\} 1$/m);
    expect((await call(1, 'POST', '/v1/queues/dlx-dead/redrive', undefined, READER)).status).toBe(403);
    expect(await call(1, 'POST', '/v1/queues/dlx-dead/redrive')).toEqual({ status: 200, body: { count: 1 } });
    // It ran again in dlx (attempts counted afresh) and, failing again, is back among the dead letters.
    await waitFor(async () => {
      return (await storedEvents(db.sql, { jobId: id })).filter((e) => (e.data as { state?: string }).state === 'running').length === 2;
    }, { what: 'the redriven job to run again' });
    expect((await call(1, 'POST', '/v1/queues/no-such/redrive')).status).toBe(404);
    expect((await call(1, 'POST', '/v1/queues/dlx-dead/redrive', { limit: 0 })).status).toBe(400);
  });

  it('bulk operations answer counts, and refuse bad filters with 400 and readers with 403', async () => {
    // A task no executor declares: the jobs stay queued (a pause could race a claim round in flight).
    await call(0, 'POST', '/v1/queues/bulk-http/jobs/batch', { jobs: Array.from({ length: 7 }, () => ({ task: 'bulk.undeclared' })) });
    expect(await call(1, 'POST', '/v1/jobs/bulk/cancel', { queue: 'bulk-http', limit: 5 })).toEqual({ status: 200, body: { count: 5 } });
    expect(await call(1, 'POST', '/v1/jobs/bulk/retry', { queue: 'bulk-http', state: 'cancelled' })).toEqual({ status: 200, body: { count: 5 } });
    expect(await call(0, 'POST', '/v1/jobs/bulk/delete', { queue: 'bulk-http' })).toEqual({ status: 200, body: { count: 7 } });
    expect((await call(0, 'POST', '/v1/jobs/bulk/delete', { queue: 'bulk-http' }, READER)).status).toBe(403);
    for (const bad of [{}, { state: 'running' }, { queue: 'bulk-http', limit: 100_000 }, { queue: 'bulk-http', extra: 1 }, { createdBefore: 'yesterday' }]) {
      const r = await call(0, 'POST', '/v1/jobs/bulk/delete', bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(r.body.error.code).toBe('invalid_request');
    }
    expect((await call(0, 'POST', '/v1/jobs/bulk/explode', { queue: 'bulk-http' })).status).toBe(404);
  });

  it('a unique key is held while the job is active and free once it finished', async () => {
    const a = await call(0, 'POST', '/v1/queues/uniq-http/jobs', { task: 'uniq.undeclared', uniqueKey: 'nightly' });
    const b = await call(1, 'POST', '/v1/queues/uniq-http/jobs', { task: 'uniq.undeclared', uniqueKey: 'nightly' });
    expect([a.status, b.status]).toEqual([201, 200]);
    expect(b.body.job.id).toBe(a.body.job.id);
    await call(0, 'POST', `/v1/jobs/${a.body.job.id}/cancel`);
    const c = await call(1, 'POST', '/v1/queues/uniq-http/jobs', { task: 'uniq.undeclared', uniqueKey: 'nightly' });
    expect(c.status).toBe(201);
    expect(c.body.job.id).not.toBe(a.body.job.id);
    expect((await call(1, 'POST', '/v1/queues/uniq-http/jobs', { task: 'noop', uniqueKey: 'x', idempotencyKey: 'y' })).status).toBe(400);
  });
});
