import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { spawnServer, TASKS, waitFor, type ServerProcess } from '../helpers/processes.js';

// Worker readiness means "doing its job": a real worker process (role worker) against a real api
// process. A refused credential or an api it cannot reach make it 503 with the reason in the body.
const API_KEY = 'ready-admin-key-0001';
const WORKER_KEY = 'ready-worker-key-000000000001';

let db: TestDatabase;
let api: ServerProcess;
let good: ServerProcess | undefined;
const procs: ServerProcess[] = [];

const worker = (token: string) =>
  spawnServer({ DISPATCH_ROLE: 'worker', API_URL: api.url, WORKER_TOKEN: token, TASKS_MODULE: TASKS, DEQUEUE_MAX_WAIT_MS: '1000' }).then((w) => (procs.push(w), w));
async function readyz(w: ServerProcess): Promise<{ status: number; body: { status: string; reason?: string; api?: { state: string; reason?: string } } }> {
  const res = await fetch(`${w.url}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; reason?: string; api?: { state: string; reason?: string } } };
}

beforeAll(async () => {
  db = await createTestDatabase();
  api = await spawnServer({ DISPATCH_ROLE: 'api', DATABASE_URL: db.url, API_KEYS: `${API_KEY}:admin`, WORKER_KEYS: `${WORKER_KEY}:*` });
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  await api?.kill('SIGKILL');
  await db?.drop();
});

describe('worker readiness (real worker and api processes)', () => {
  it('a refused credential is not ready, with the reason; a good one is ready', async () => {
    const bad = await worker('not-a-valid-worker-credential');
    const refused = await waitFor(async () => {
      const r = await readyz(bad);
      return r.status === 503 && r.body.api?.state === 'credential_refused' ? r : undefined;
    }, { what: 'the bad-token worker to report a refused credential' });
    expect(refused.body.status).toBe('not_ready');
    expect(refused.body.reason).toMatch(/refused this worker's credential: .*invalid worker/);

    good = await worker(WORKER_KEY);
    const w = good;
    const ok = await waitFor(async () => {
      const r = await readyz(w);
      return r.status === 200 ? r : undefined;
    }, { what: 'the good worker to be ready' });
    expect(ok.body).toMatchObject({ status: 'ready', api: { state: 'ok' } });
    // The bad one stays not ready: it never got a dequeue answered.
    expect((await readyz(bad)).status).toBe(503);
  });

  it('a worker that cannot reach the api is not ready, with the reason, and is ready again once the api is back', async () => {
    const w = good ?? (await worker(WORKER_KEY));
    await waitFor(async () => (await readyz(w)).status === 200, { what: 'the worker to be ready first' });
    const port = new URL(api.url).port;
    await api.kill('SIGKILL');
    const down = await waitFor(async () => {
      const r = await readyz(w);
      return r.status === 503 ? r : undefined;
    }, { timeoutMs: 60_000, what: 'the worker to notice the api is gone' });
    expect(down.body.api?.state).toBe('unreachable');
    expect(down.body.reason).toMatch(/cannot reach the api/);
    // Same address again: the worker's API_URL points there.
    api = await spawnServer({ DISPATCH_ROLE: 'api', DATABASE_URL: db.url, API_KEYS: `${API_KEY}:admin`, WORKER_KEYS: `${WORKER_KEY}:*`, PORT: port });
    await waitFor(async () => (await readyz(w)).status === 200, { timeoutMs: 60_000, what: 'the worker to be ready again' });
  });
});
