import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of PostgreSQL that counts the statements clients send, by reading the
 * frontend protocol: every simple Query ('Q') and every extended-protocol Execute ('E') is one
 * statement. Counted outside the product, so a test of "costs no queries" does not trust the
 * product's own bookkeeping.
 */
export interface PgProxy {
  url: string;
  statements(): number;
  /** The last 50 query texts sent (Parse or Query), for a failing assertion's message. */
  recent(): string[];
  close(): Promise<void>;
}

export async function startPgProxy(targetUrl: string): Promise<PgProxy> {
  const target = new URL(targetUrl);
  let statements = 0;
  const recent: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port || 5432) });
    sockets.add(client).add(upstream);
    let buf = Buffer.alloc(0);
    let started = false;
    client.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (!started) {
          if (buf.length < 8) break;
          const len = buf.readInt32BE(0);
          if (buf.length < len) break;
          // SSLRequest (80877103) is answered 'N' and followed by the real startup message.
          if (buf.readInt32BE(4) !== 80877103) started = true;
          buf = buf.subarray(len);
          continue;
        }
        if (buf.length < 5) break;
        const len = buf.readInt32BE(1);
        if (buf.length < len + 1) break;
        const type = String.fromCharCode(buf[0]!);
        if (type === 'Q' || type === 'E') statements++;
        if (type === 'Q' || type === 'P') {
          recent.push(`${new Date().toISOString()} ${type} ${buf.subarray(5, Math.min(len + 1, 200)).toString().replace(/\0/g, ' ').trim()}`);
          if (recent.length > 50) recent.shift();
        }
        buf = buf.subarray(len + 1);
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const u = new URL(targetUrl);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return {
    url: u.toString(),
    statements: () => statements,
    recent: () => [...recent],
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
