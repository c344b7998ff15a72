import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { spawnServer, TASKS, waitFor, type ServerProcess } from '../helpers/processes.js';

// Split mode for real: one api process and two worker processes (children of this test; the
// workers' environment has no DATABASE_URL), talking HTTP on loopback.
const API_KEY = 'e2e-admin-key-0001';
const WORKER_KEY = 'e2e-worker-key-000000000001';
const FAST_LEASES = { LEASE_MS: '2000', HEARTBEAT_MS: '500', REAPER_INTERVAL_MS: '300', POLL_INTERVAL_MS: '200' };

let db: TestDatabase;
let dir: string;
let api: ServerProcess;
const workers: ServerProcess[] = [];

const headers = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };
async function post(p: string, body: unknown, h: Record<string, string> = headers) {
  const res = await fetch(`${api.url}${p}`, { method: 'POST', headers: h, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
function startWorker(extra: Record<string, string> = {}) {
  return spawnServer({ DISPATCH_ROLE: 'worker', API_URL: api.url, WORKER_TOKEN: WORKER_KEY, TASKS_MODULE: TASKS, WORKER_CONCURRENCY: '16', SHUTDOWN_GRACE_MS: '2000', ...FAST_LEASES, ...extra });
}

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(path.join(tmpdir(), 'pgdispatch-e2e-'));
  api = await spawnServer({ DISPATCH_ROLE: 'api', DATABASE_URL: db.url, API_KEYS: `${API_KEY}:admin`, WORKER_KEYS: `${WORKER_KEY}:*`, ...FAST_LEASES });
  // The two main workers skip the `hold` queue, which the lease-recovery test keeps to itself.
  workers.push(await startWorker({ LISTEN_QUEUES: 'e2e,steps' }), await startWorker({ LISTEN_QUEUES: 'e2e,steps' }));
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.kill('SIGKILL')));
  await api?.kill('SIGTERM');
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

describe('split mode: api + two workers over HTTP', () => {
  it('runs 2,000 jobs enqueued over HTTP, each completed exactly once', async () => {
    const file = path.join(dir, 'record.log');
    const ids: number[] = [];
    for (let i = 0; i < 2000; i += 500) {
      const jobs = Array.from({ length: 500 }, () => ({ task: 'test.record', payload: { file } }));
      const res = await post('/v1/queues/e2e/jobs/batch', { jobs });
      expect(res.status).toBe(201);
      ids.push(...(res.body.results as { job: { id: number } }[]).map((r) => r.job.id));
    }
    await waitFor(async () => {
      const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where queue = 'e2e' and state = 'succeeded'`;
      return r!.n === 2000;
    }, { timeoutMs: 60_000, what: '2000 succeeded jobs' });
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    const executions = new Map<number, number>();
    for (const l of lines) executions.set(Number(l.split(' ')[0]), (executions.get(Number(l.split(' ')[0])) ?? 0) + 1);
    expect(new Set(ids).size).toBe(2000);
    for (const id of ids) expect(executions.get(id)).toBe(1);
    // Both workers took part: the work was pulled, not pushed to one.
    const pids = new Set(lines.map((l) => l.split(' ')[1]));
    expect(pids.size).toBe(2);
    const [states] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where queue = 'e2e' and state <> 'succeeded'`;
    expect(states!.n).toBe(0);
  });

  it('recovers every job a kill -9ed worker held; its late result gets 409 lease_lost', async () => {
    const file = path.join(dir, 'hold.log');
    // A third worker that only this test kills, on its own queue.
    const victim = await startWorker({ LISTEN_QUEUES: 'hold' });
    const res = await post('/v1/queues/hold/jobs/batch', { jobs: Array.from({ length: 8 }, () => ({ task: 'test.hold', payload: { file, ms: 3000 } })) });
    const ids = (res.body.results as { job: { id: number } }[]).map((r) => r.job.id);
    const held = await waitFor(async () => {
      const rows = await db.sql<{ id: number; token: string }[]>`
        select id, lease_token::text as token from jobs where id = any(${ids}) and state = 'running'`;
      return rows.length === 8 ? rows : undefined;
    }, { what: 'the victim to hold all 8 jobs' });
    // Kill only once every handler has started (claimed is not yet started).
    await waitFor(async () => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l.startsWith('start ') && l.includes(` ${victim.pid} 1`)).length === 8, { what: 'all 8 handlers to start' });
    expect(await victim.kill('SIGKILL')).toBe(null);
    // A survivor listening on the queue picks them up after the leases expire.
    const rescuer = await startWorker({ LISTEN_QUEUES: 'hold' });
    workers.push(rescuer);
    await waitFor(async () => {
      const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where id = any(${ids}) and state = 'succeeded'`;
      return r!.n === 8;
    }, { timeoutMs: 30_000, what: 'rescued jobs to succeed' });
    const rows = await db.sql<{ attempt: number }[]>`select attempt from jobs where id = any(${ids})`;
    for (const r of rows) expect(r.attempt).toBe(2);
    const log = await readFile(file, 'utf8');
    for (const id of ids) {
      expect(log).toContain(`start ${id} ${victim.pid} 1`);
      expect(log).toContain(`done ${id} ${rescuer.pid} 2`);
      expect(log).not.toContain(`done ${id} ${victim.pid}`);
    }
    // The killed holder's late result, replayed with its old token, is fenced off.
    const stale = held[0]!;
    const late = await post(`/internal/v1/jobs/${stale.id}/complete`, { leaseToken: stale.token, result: { late: true } }, { authorization: `Bearer ${WORKER_KEY}`, 'content-type': 'application/json' });
    expect(late.status).toBe(409);
    expect((late.body.error as { code: string }).code).toBe('lease_lost');
    const [after] = await db.sql<{ result: { pid: number } }[]>`select result from jobs where id = ${stale.id}`;
    expect(after!.result.pid).toBe(rescuer.pid);
  });

  it('a cancelled running job sees its signal abort within one heartbeat', async () => {
    const file = path.join(dir, 'abort.log');
    const res = await post('/v1/queues/e2e/jobs', { task: 'test.watch-abort', payload: { file, ms: 30_000 } });
    const id = (res.body.job as { id: number }).id;
    await waitFor(async () => (await readFile(file, 'utf8').catch(() => '')).includes(`start ${id}`), { what: 'the job to start' });
    const cancelledAt = Date.now();
    const cancel = await post(`/v1/jobs/${id}/cancel`, {});
    expect(cancel.status).toBe(200);
    expect((cancel.body.job as { cancelRequested: boolean }).cancelRequested).toBe(true);
    const line = await waitFor(async () => (await readFile(file, 'utf8')).split('\n').find((l) => l.startsWith(`abort ${id}`)), { what: 'the abort' });
    const abortedAt = Number(line.split(' ')[2]);
    expect(abortedAt - cancelledAt).toBeLessThan(500 + 400); // one heartbeat (500 ms) plus delivery
    await waitFor(async () => {
      const [r] = await db.sql<{ state: string }[]>`select state from jobs where id = ${id}`;
      return r!.state === 'cancelled';
    }, { what: 'state cancelled' });
  });

  it('a step-checkpointed task that crashes after step two resumes at step three', async () => {
    const file = path.join(dir, 'steps.log');
    await fetch(`${api.url}/v1/queues/steps`, { method: 'PUT', headers, body: JSON.stringify({ backoffBaseMs: 0, backoffMaxMs: 0 }) });
    const res = await post('/v1/queues/steps/jobs', { task: 'test.steps', payload: { file } });
    const id = (res.body.job as { id: number }).id;
    const job = await waitFor(async () => {
      const [r] = await db.sql<{ state: string; attempt: number; result: unknown }[]>`select state, attempt, result from jobs where id = ${id}`;
      return r!.state === 'succeeded' ? r : undefined;
    }, { what: 'the steps job to succeed' });
    expect(job.attempt).toBe(2);
    expect(job.result).toEqual({ sum: 6 });
    expect((await readFile(file, 'utf8')).trim().split('\n')).toEqual(['one 1', 'two 1', 'three 2']);
  });

  it('SIGTERM releases jobs still running after the grace period, without spending an attempt', async () => {
    const file = path.join(dir, 'graceful.log');
    const leaving = await startWorker({ LISTEN_QUEUES: 'graceful', SHUTDOWN_GRACE_MS: '300' });
    const res = await post('/v1/queues/graceful/jobs/batch', { jobs: Array.from({ length: 4 }, () => ({ task: 'test.hold', payload: { file, ms: 20_000 } })) });
    const ids = (res.body.results as { job: { id: number } }[]).map((r) => r.job.id);
    await waitFor(async () => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l.startsWith('start ')).length === 4, { what: 'all 4 handlers to start' });
    const exitCode = await leaving.kill('SIGTERM');
    expect(exitCode).toBe(0);
    const rows = await db.sql<{ state: string; attempt: number; lease: string | null }[]>`
      select state, attempt, lease_token::text as lease from jobs where id = any(${ids})`;
    expect(rows).toHaveLength(4);
    for (const r of rows) expect(r).toEqual({ state: 'queued', attempt: 0, lease: null });
  });

  it('WORKER_PREFETCH: holds at most slots + prefetch, keeps the prefetched leases alive, and SIGTERM releases all unspent', async () => {
    const file = path.join(dir, 'prefetch.log');
    const worker = await startWorker({ LISTEN_QUEUES: 'prefetch', WORKER_CONCURRENCY: '2', WORKER_PREFETCH: '3', SHUTDOWN_GRACE_MS: '300' });
    const res = await post('/v1/queues/prefetch/jobs/batch', { jobs: Array.from({ length: 10 }, () => ({ task: 'test.hold', payload: { file, ms: 20_000 } })) });
    const ids = (res.body.results as { job: { id: number } }[]).map((r) => r.job.id);
    await waitFor(async () => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l.startsWith('start ')).length === 2, { what: 'both handler slots busy' });
    const held = async () => db.sql<{ id: number; attempt: number; live: boolean }[]>`
      select id, attempt, lease_expires_at > now() as live from jobs where id = any(${ids}) and state = 'running'`;
    await waitFor(async () => (await held()).length === 5, { what: '2 running + 3 prefetched' });
    // Longer than LEASE_MS (2 s), with the reaper every 300 ms: only heartbeats keep the 3 buffered leases.
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const rows = await held();
      expect(rows).toHaveLength(5);
      for (const r of rows) expect(r).toMatchObject({ attempt: 1, live: true });
    }
    expect((await readFile(file, 'utf8')).split('\n').filter((l) => l.startsWith('start '))).toHaveLength(2);
    expect(await worker.kill('SIGTERM')).toBe(0);
    const rows = await db.sql<{ state: string; attempt: number }[]>`select state, attempt from jobs where id = any(${ids})`;
    expect(rows).toHaveLength(10);
    for (const r of rows) expect(r).toEqual({ state: 'queued', attempt: 0 });
  });
});
