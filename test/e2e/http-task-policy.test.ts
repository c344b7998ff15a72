import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '@pgdispatch/core/config';
import { silentLogger } from '@pgdispatch/core/log';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { json, startTestServer, type TestServer } from '@pgdispatch/worker/testing/http-server';
import { startServer, type RunningServer } from '@pgdispatch/server/serve';
import { waitFor } from '../helpers/processes.js';

// Issue #10 item 4: http.request through the whole server (config → executor → task), against a
// real local HTTP server on 127.0.0.1 and a real database. Three role-all servers on one
// database, each executing its own queue with its own settings.
let db: TestDatabase;
let target: TestServer;
const servers: RunningServer[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  target = await startTestServer((req, res) => json(res, 200, { secret: 'internal-only', path: req.path, pad: 'z'.repeat(500) }));
  const base = { DISPATCH_ROLE: 'all', DATABASE_URL: db.url, HOST: '127.0.0.1', PORT: '0', POLL_INTERVAL_MS: '100' };
  for (const extra of [
    { LISTEN_QUEUES: 'default-policy' },
    { LISTEN_QUEUES: 'allowed', HTTP_TASK_ALLOW: '127.0.0.1', HTTP_TASK_MAX_RESPONSE_BYTES: '100' },
    { LISTEN_QUEUES: 'no-http', BUILTIN_TASKS: 'noop,sleep' },
  ]) {
    servers.push(await startServer(parseConfig({ ...base, ...extra }), { log: silentLogger }));
  }
});
afterAll(async () => {
  for (const s of servers) await s.stop();
  await target?.close();
  await db?.drop();
});

async function runJob(queue: string, path: string): Promise<{ state: string; result: any; lastError: any }> {
  const res = await fetch(`${servers[0]!.url}/v1/queues/${queue}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ task: 'http.request', payload: { url: `${target.url}${path}`, method: 'GET' }, maxAttempts: 3 }),
  });
  expect(res.status).toBe(201);
  const { job } = (await res.json()) as { job: { id: number } };
  return waitFor(async () => {
    const [row] = await db.sql<{ state: string; result: any; lastError: any }[]>`select state, result, last_error as "lastError" from jobs where id = ${job.id}`;
    return row && ['succeeded', 'failed'].includes(row.state) ? row : undefined;
  }, { timeoutMs: 15_000, what: `job on ${queue} to finish` });
}

describe('http.request through the server', () => {
  it('refuses 127.0.0.1 by default: the job fails for good and the target sees no request', async () => {
    const job = await runJob('default-policy', '/refused');
    expect(job.state).toBe('failed');
    expect(job.lastError).toMatchObject({ name: 'DestinationRefusedError', retryable: false });
    expect(job.lastError.message).toMatch(/loopback.*HTTP_TASK_ALLOW/);
    expect(job.result).toBeNull();
    expect(target.requests.filter((r) => r.path === '/refused')).toHaveLength(0);
  });

  it('HTTP_TASK_ALLOW=127.0.0.1 lets it through, and HTTP_TASK_MAX_RESPONSE_BYTES caps the stored body', async () => {
    const job = await runJob('allowed', '/allowed');
    expect(job.state).toBe('succeeded');
    expect(target.requests.filter((r) => r.path === '/allowed')).toHaveLength(1);
    expect(job.result).toMatchObject({ status: 200, truncated: true, keptBytes: 100 });
    expect(job.result.body).toHaveLength(100);
    expect(job.result.body.startsWith('{"secret":"internal-only"')).toBe(true);
  });

  it('BUILTIN_TASKS=noop,sleep switches http.request off: the job waits for a worker that has it and never runs here', async () => {
    const noHttp = servers[2]!;
    const res = await fetch(`${noHttp.url}/v1/queues/no-http/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'http.request', payload: { url: `${target.url}/off`, method: 'GET' } }),
    });
    const { job } = (await res.json()) as { job: { id: number } };
    // Task routing: the only executor of this queue does not declare http.request, so it is never
    // handed the job (no "unknown task" failure); the job waits, and /readyz says why.
    const readyz = await waitFor(async () => {
      const body = (await (await fetch(`${noHttp.url}/readyz`)).json()) as { tasksWithoutWorkers?: string[] };
      return body.tasksWithoutWorkers?.includes('http.request') ? body : undefined;
    }, { what: 'readyz to name http.request' });
    expect(readyz.tasksWithoutWorkers).toEqual(['http.request']);
    await new Promise((r) => setTimeout(r, 1_000)); // ten poll intervals of the no-http server
    const [row] = await db.sql<{ state: string; attempt: number }[]>`select state, attempt from jobs where id = ${job.id}`;
    expect(row).toEqual({ state: 'queued', attempt: 0 });
    expect(target.requests.filter((r) => r.path === '/off')).toHaveLength(0);
  });
});
