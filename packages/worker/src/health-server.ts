/**
 * A minimal HTTP health endpoint for a standalone worker (the `pgdispatch-worker` bin): `/healthz`
 * answers while the process lives, `/readyz` is 200 only while the worker runs and the api
 * answers its dequeues (503 with the reason otherwise). node:http, so the worker package needs no
 * web framework.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WorkerReadiness } from './create-worker.js';

export interface HealthServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export function startHealthServer(opts: { host: string; port: number; version: string; readiness: () => WorkerReadiness }): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: { code: 'method_not_allowed', message: `${req.method} is not allowed` } });
    if (path === '/healthz') return send(200, { status: 'ok' });
    if (path === '/readyz') {
      const r = opts.readiness();
      const body = { status: r.ready ? 'ready' : 'not_ready', role: 'worker', version: opts.version, ...(r.reason ? { reason: r.reason } : {}), api: r.api, worker: r.worker };
      return send(r.ready ? 200 : 503, body, r.ready ? {} : { 'retry-after': '1' });
    }
    send(404, { error: { code: 'not_found', message: `no route for ${req.method} ${path}` } });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      const { port } = server.address() as AddressInfo;
      const shown = opts.host === '0.0.0.0' || opts.host === '::' ? 'localhost' : opts.host;
      resolve({
        url: `http://${shown}:${port}`,
        port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeIdleConnections(); // probes keep connections alive; do not wait out their timeout
          }),
      });
    });
  });
}
