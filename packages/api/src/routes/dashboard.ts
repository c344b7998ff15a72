import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Hono, type Context } from 'hono';
import type { Logger } from '@pgdispatch/core/log';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.css', '.svg', '.json', '.txt']);

/**
 * The dashboard is a static bundle calling the public API from the same origin. No inline script
 * or style anywhere (the build emits none), so the policy needs no 'unsafe-inline'; the API key
 * travels only in request headers, never in URLs (`connect-src 'self'`).
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: Buffer;
  gzip?: Buffer;
  type: string;
  etag: string;
  /** Hashed file names (vite's `assets/*-<hash>.js`) never change: cache them for a year. */
  immutable: boolean;
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

/**
 * Loads the built dashboard once (a few hundred kB) and serves it from memory, gzip computed at
 * start, with ETags, long-lived caching for hashed assets and `no-cache` for index.html so a new
 * release is picked up on the next load. Only files that exist in the build get a route, so
 * unknown paths keep the API's JSON 404.
 */
export function dashboardRoutes(opts: { dir: string; log?: Logger }) {
  const app = new Hono();
  const assets = new Map<string, Asset>();
  if (existsSync(join(opts.dir, 'index.html'))) {
    for (const file of walk(opts.dir)) {
      const ext = extname(file);
      const type = CONTENT_TYPES[ext];
      if (!type || file.endsWith('.map')) continue;
      const body = readFileSync(file);
      const path = '/' + relative(opts.dir, file).split(sep).join('/');
      assets.set(path, {
        body,
        ...(COMPRESSIBLE.has(ext) && body.length > 512 ? { gzip: gzipSync(body, { level: 9 }) } : {}),
        type,
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
        immutable: path.startsWith('/assets/'),
      });
    }
  } else {
    opts.log?.warn('dashboard not built: / answers 404 (run npm run build)', { dir: opts.dir });
  }

  const serve = (asset: Asset) => (c: Context) => {
    c.header('Content-Type', asset.type);
    c.header('Cache-Control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    c.header('ETag', asset.etag);
    c.header('Vary', 'Accept-Encoding');
    c.header('X-Content-Type-Options', 'nosniff');
    if (asset.type.startsWith('text/html')) {
      c.header('Content-Security-Policy', DASHBOARD_CSP);
      c.header('X-Frame-Options', 'DENY');
      c.header('Referrer-Policy', 'no-referrer');
      c.header('Cross-Origin-Opener-Policy', 'same-origin');
    }
    if (c.req.header('if-none-match') === asset.etag) return c.body(null, 304);
    const gzip = asset.gzip && /\bgzip\b/.test(c.req.header('accept-encoding') ?? '');
    if (gzip) c.header('Content-Encoding', 'gzip');
    return c.body(new Uint8Array(gzip ? asset.gzip! : asset.body));
  };
  for (const [path, asset] of assets) {
    app.get(path, serve(asset));
    if (path === '/index.html') app.get('/', serve(asset));
  }
  if (!assets.has('/index.html')) {
    app.get('/', (c) => c.json({ error: { code: 'not_found', message: 'the dashboard is not built: run npm run build' } }, 404));
  }
  return app;
}
