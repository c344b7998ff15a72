import http from 'node:http';

/**
 * A lean JSON POST over node:http with one keep-alive agent, so the bench's own client costs as
 * little CPU as possible (fetch/undici costs noticeably more per request on a 2-core machine and
 * would be charged to the system under test).
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024 });

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const data = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { ...headers, 'content-type': 'application/json', 'content-length': String(data.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}
