import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { createDb, closeDb } from '@pgdispatch/engine/db';
import { startEmbeddedPostgres } from '@pgdispatch/engine/embedded';
import { migrate } from '@pgdispatch/engine/migrator';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgTemplate: string;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * One PostgreSQL per test run: TEST_DATABASE_URL when set, else an embedded server in a temp dir.
 * A template database is migrated once; each test file clones its own database from it.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let stopEmbedded: (() => Promise<void>) | undefined;
  let tmp: string | undefined;
  let adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) {
    tmp = await mkdtemp(path.join(tmpdir(), 'pgdispatch-test-'));
    await chmod(tmp, 0o755); // as root, the server runs as the `postgres` OS user and must reach it
    const pgServer = await startEmbeddedPostgres({ dataDir: path.join(tmp, 'data'), port: await freePort(), ephemeral: true });
    adminUrl = pgServer.url;
    stopEmbedded = pgServer.stop;
  }
  const template = `pgdispatch_tpl_${process.pid}`;
  const admin = createDb({ url: adminUrl, max: 1 });
  await admin.unsafe(`drop database if exists ${template}`);
  await admin.unsafe(`create database ${template}`);
  const url = new URL(adminUrl);
  url.pathname = `/${template}`;
  const tpl = createDb({ url: url.toString(), max: 1 });
  await migrate(tpl);
  await closeDb(tpl);
  await closeDb(admin);
  project.provide('pgAdminUrl', adminUrl);
  project.provide('pgTemplate', template);
  return async () => {
    const a = createDb({ url: adminUrl, max: 1 });
    const dbs = await a<{ datname: string }[]>`select datname from pg_database where datname like ${`pgdispatch_t_${process.pid}_%`} or datname = ${template}`;
    for (const d of dbs) await a.unsafe(`drop database if exists ${d.datname} with (force)`);
    await closeDb(a);
    if (stopEmbedded) await stopEmbedded();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  };
}
