import http from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '@pgdispatch/core/config';
import { silentLogger } from '@pgdispatch/core/log';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { startServer, type RunningServer } from '@pgdispatch/server/serve';

// Issue #10 item 7: a client that declares a body over BODY_LIMIT_BYTES gets a readable 413 JSON
// error, not a connection reset — through a raw socket that declares 5 MiB and sends only part.
let db: TestDatabase;
let server: RunningServer;
const KEY = 'body-limit-key-1';
const WORKER = 'w'.repeat(24);

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startServer(parseConfig({ DISPATCH_ROLE: 'api', DATABASE_URL: db.url, HOST: '127.0.0.1', PORT: '0', API_KEYS: `${KEY}:admin`, WORKER_KEYS: `${WORKER}:*` }), { log: silentLogger });
});
afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

/** Sends the head and `sendBytes` of a body declared as `declared` bytes; resolves with what came back. */
function rawPost(path: string, token: string, declared: number, sendBytes: number): Promise<{ raw: string; error?: string }> {
  const { port } = new URL(server.url);
  return new Promise((resolve) => {
    const sock = connect(Number(port), '127.0.0.1');
    let raw = '';
    let settled = false;
    const done = (error?: string) => {
      if (settled) return;
      settled = true;
      sock.destroy();
      resolve({ raw, ...(error !== undefined && { error }) });
    };
    sock.on('connect', () => {
      sock.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`);
      sock.write(`{"task":"noop","payload":"${'x'.repeat(Math.max(0, sendBytes - 30))}`);
    });
    sock.on('data', (b) => {
      raw += b.toString();
      const end = raw.indexOf('\r\n\r\n');
      if (end >= 0) {
        const len = /content-length: (\d+)/i.exec(raw.slice(0, end));
        if (len && raw.length >= end + 4 + Number(len[1])) done();
      }
    });
    sock.on('error', (err: NodeJS.ErrnoException) => done(err.code ?? String(err)));
    sock.on('close', () => done());
    setTimeout(() => done('timeout'), 10_000);
  });
}

describe('declared bodies over the limit', () => {
  it.each([
    ['/v1/queues/big/jobs', KEY],
    ['/internal/v1/complete', WORKER],
  ])('POST %s declaring 5 MiB with a partial body gets 413 payload_too_large as JSON', async (path, token) => {
    const res = await rawPost(path, token, 5 * 1024 * 1024, 64 * 1024);
    expect(res.error).toBeUndefined();
    const [head, body] = res.raw.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 413 /);
    expect(head).toMatch(/content-type: application\/json/i);
    expect(JSON.parse(body!)).toEqual({ error: { code: 'payload_too_large', message: expect.stringContaining('4194304'), details: { limit: 4194304 } } });
    const [n] = await db.sql<{ n: number }[]>`select count(*)::int as n from jobs`;
    expect(n!.n).toBe(0);
  });

  it('a client that sends the whole 5 MiB body reads the 413 too, and may reuse the connection', async () => {
    const body = JSON.stringify({ task: 'noop', payload: 'x'.repeat(5 * 1024 * 1024) });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = http.request(`${server.url}/v1/queues/big/jobs`, { method: 'POST', agent, headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (r) => {
          let text = '';
          r.on('data', (c: Buffer) => (text += c.toString()));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        req.end(body);
      });
      expect(res.status).toBe(413);
      expect(JSON.parse(res.text).error.code).toBe('payload_too_large');
      const again = await fetch(`${server.url}/v1/queues`, { headers: { authorization: `Bearer ${KEY}` } });
      expect(again.status).toBe(200);
    } finally {
      agent.destroy();
    }
  });
});
