import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { REPO, spawnServer, TASKS, waitFor, type ServerProcess } from '../helpers/processes.js';

// A rolling deploy for real: an api process, an "old" worker process whose tasks module lacks
// `test.v2-only`, jobs of that task enqueued before any worker knows it, then a "new" worker
// process that knows it. Task routing must keep the old worker's hands off those jobs.
const API_KEY = 'e2e-admin-key-0002';
const WORKER_KEY = 'e2e-worker-key-000000000002';
const FAST = { LEASE_MS: '2000', HEARTBEAT_MS: '500', REAPER_INTERVAL_MS: '300', POLL_INTERVAL_MS: '200' };
const TASKS_V2 = path.join(REPO, 'test/fixtures/tasks-v2.mjs');

let db: TestDatabase;
let dir: string;
let api: ServerProcess;
const workers: ServerProcess[] = [];

const headers = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };
const worker = (tasksModule: string) =>
  spawnServer({ DISPATCH_ROLE: 'worker', API_URL: api.url, WORKER_TOKEN: WORKER_KEY, TASKS_MODULE: tasksModule, WORKER_CONCURRENCY: '8', ...FAST });
const readyz = async () => (await (await fetch(`${api.url}/readyz`)).json()) as { tasksWithoutWorkers?: string[] };

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(path.join(tmpdir(), 'pgdispatch-deploy-'));
  api = await spawnServer({ DISPATCH_ROLE: 'api', DATABASE_URL: db.url, API_KEYS: `${API_KEY}:admin`, WORKER_KEYS: `${WORKER_KEY}:*`, ...FAST });
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.kill('SIGKILL')));
  await api?.kill('SIGTERM');
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

describe('rolling deploy: a task only the new worker version knows', () => {
  it('waits for the new worker instead of failing as unknown, then every job succeeds', async () => {
    const oldFile = path.join(dir, 'old.log');
    const newFile = path.join(dir, 'new.log');
    workers.push(await worker(TASKS));
    const jobs = [
      ...Array.from({ length: 50 }, () => ({ task: 'test.v2-only', payload: { file: newFile }, maxAttempts: 1 })),
      ...Array.from({ length: 50 }, () => ({ task: 'test.record', payload: { file: oldFile } })),
    ];
    const res = await fetch(`${api.url}/v1/queues/deploy/jobs/batch`, { method: 'POST', headers, body: JSON.stringify({ jobs }) });
    expect(res.status).toBe(201);

    // The old worker is alive and pulling this queue: it runs the tasks it knows…
    await waitFor(async () => {
      const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where task = 'test.record' and state = 'succeeded'`;
      return r!.n === 50;
    }, { what: 'the old worker to run the tasks it knows' });
    // …and, over several more dequeue rounds, never takes the new task's jobs.
    await new Promise((r) => setTimeout(r, 1_500));
    const waiting = await db.sql<{ state: string; attempt: number; n: number }[]>`
      select state, attempt, count(*)::int as n from jobs where task = 'test.v2-only' group by state, attempt`;
    expect(waiting).toEqual([{ state: 'queued', attempt: 0, n: 50 }]);
    expect((await readyz()).tasksWithoutWorkers).toEqual(['test.v2-only']);
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(metrics).toMatch(/^pgdispatch_tasks_without_workers\{task="test\.v2-only"\} 1$/m);

    // The new version rolls out: it knows the task and runs every waiting job, first attempt.
    workers.push(await worker(TASKS_V2));
    await waitFor(async () => {
      const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where task = 'test.v2-only' and state = 'succeeded'`;
      return r!.n === 50;
    }, { what: 'the new worker to run the new task' });
    const rows = await db.sql<{ state: string; attempt: number; last_error: unknown }[]>`
      select state, attempt, last_error from jobs where task = 'test.v2-only'`;
    expect(rows.filter((r) => r.state !== 'succeeded' || r.attempt !== 1 || r.last_error !== null)).toEqual([]);
    const lines = (await readFile(newFile, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(50);
    expect(new Set(lines.map((l) => l.split(' ')[1]))).toEqual(new Set([String(workers[1]!.pid)]));
    expect((await readyz()).tasksWithoutWorkers).toEqual([]);
    const [failed] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs where state = 'failed'`;
    expect(failed!.n).toBe(0);
  });
});
