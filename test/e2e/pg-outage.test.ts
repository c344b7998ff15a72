import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../packages/core/src/config.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../packages/engine/src/embedded.js';
import { silentLogger } from '../../packages/core/src/log.js';
import { startServer, type RunningServer } from '../../apps/server/src/serve.js';
import { waitFor } from '../helpers/processes.js';

// A PostgreSQL of its own that this test really stops and starts again.
let pg: EmbeddedPostgres | undefined;
let server: RunningServer | undefined;
let dir: string | undefined;

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

afterAll(async () => {
  await server?.stop();
  await pg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('database outage', () => {
  it('answers 503 with Retry-After while Postgres is down and recovers without a restart', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pgdispatch-outage-'));
    await chmod(dir, 0o755);
    const port = await freePort();
    const dataDir = path.join(dir, 'data');
    pg = await startEmbeddedPostgres({ dataDir, port });
    const config = parseConfig({ DISPATCH_ROLE: 'api', DATABASE_URL: pg.url, HOST: '127.0.0.1', PORT: '0', API_KEYS: 'outage-key-1:admin', WORKER_KEYS: `${'w'.repeat(20)}:*` });
    server = await startServer(config, { log: silentLogger });
    const enqueue = () =>
      fetch(`${server!.url}/v1/queues/o/jobs`, { method: 'POST', headers: { authorization: 'Bearer outage-key-1', 'content-type': 'application/json' }, body: JSON.stringify({ task: 'noop' }) });
    expect((await enqueue()).status).toBe(201);

    await pg.stop();
    const down = await enqueue();
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('1');
    expect(((await down.json()) as { error: { code: string } }).error.code).toBe('unavailable');
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

    pg = await startEmbeddedPostgres({ dataDir, port });
    const up = await waitFor(async () => {
      const r = await enqueue();
      return r.status === 201 ? r : undefined;
    }, { timeoutMs: 20_000, what: 'recovery' });
    expect(up.status).toBe(201);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });
});
