import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { closeDb, createDb, type Sql } from '@pgdispatch/engine/db';
import { startEmbeddedPostgres } from '@pgdispatch/engine/embedded';
import { sleep } from './stats.js';

/** The PostgreSQL server a bench run uses, and how to make fresh databases on it. */
export interface PgTarget {
  kind: 'embedded' | 'url';
  /** URL of the maintenance database. */
  adminUrl: string;
  urlFor(db: string): string;
  /** `server_version`, e.g. "15.20". */
  version: string;
  /** pg_stat_statements is loaded (shared_preload_libraries) and installed in the admin database. */
  pgss: boolean;
  /** Why pg_stat_statements is not usable, when it is not. */
  pgssReason?: string;
  maxConnections: number;
  settings: Record<string, string>;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no free port'))));
    });
  });
}

function urlForDb(base: string, db: string): string {
  const u = new URL(base);
  u.pathname = `/${db}`;
  return u.toString();
}

const REPORTED_SETTINGS = ['server_version', 'shared_buffers', 'max_connections', 'fsync', 'synchronous_commit', 'wal_level', 'shared_preload_libraries', 'work_mem', 'max_wal_size'];

async function describe(adminUrl: string): Promise<Pick<PgTarget, 'version' | 'pgss' | 'pgssReason' | 'maxConnections' | 'settings'>> {
  const sql = createDb({ url: adminUrl, max: 1, applicationName: 'pgdispatch-bench' });
  try {
    const rows = await sql<{ name: string; setting: string }[]>`
      select name, current_setting(name) as setting from pg_settings where name = any(${REPORTED_SETTINGS})`;
    const settings = Object.fromEntries(rows.map((r) => [r.name, r.setting]));
    const preloaded = (settings.shared_preload_libraries ?? '').split(',').map((s) => s.trim()).includes('pg_stat_statements');
    let pgss = false;
    let pgssReason: string | undefined;
    if (!preloaded) {
      pgssReason = 'pg_stat_statements is not in shared_preload_libraries';
    } else {
      try {
        await sql`create extension if not exists pg_stat_statements`;
        await sql`select count(*) from pg_stat_statements`;
        pgss = true;
      } catch (err) {
        pgssReason = `pg_stat_statements unusable: ${(err as Error).message}`;
      }
    }
    return { version: settings.server_version ?? '?', pgss, pgssReason, maxConnections: Number(settings.max_connections ?? 100), settings };
  } finally {
    await closeDb(sql);
  }
}

/**
 * Uses `url` when given; else starts an embedded PostgreSQL in a temp dir on a free port, with
 * pg_stat_statements preloaded. The engine's startEmbeddedPostgres takes no server flags, so the
 * setting goes in through ALTER SYSTEM and one restart (postgresql.auto.conf is read at start).
 */
export async function openTarget(url: string | undefined, log: (m: string) => void = () => {}): Promise<PgTarget> {
  if (url) {
    const d = await describe(url);
    return { kind: 'url', adminUrl: url, urlFor: (db) => urlForDb(url, db), ...d, stop: async () => {} };
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'pgdispatch-bench-'));
  await chmod(dir, 0o755); // as root the server runs as the `postgres` OS user and must reach it
  const dataDir = path.join(dir, 'data');
  const port = await freePort();
  let pg = await startEmbeddedPostgres({ dataDir, port, ephemeral: false });
  try {
    const sql = createDb({ url: pg.url, max: 1 });
    await sql`alter system set shared_preload_libraries = 'pg_stat_statements'`;
    await sql`alter system set pg_stat_statements.track = 'all'`;
    await closeDb(sql);
    await pg.stop();
    pg = await startEmbeddedPostgres({ dataDir, port, ephemeral: false });
  } catch (err) {
    log(`embedded: could not preload pg_stat_statements (${(err as Error).message}); continuing without it`);
  }
  const d = await describe(pg.url);
  const running = pg;
  return {
    kind: 'embedded',
    adminUrl: running.url,
    urlFor: running.urlFor,
    ...d,
    stop: async () => {
      await running.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

let seq = 0;

/** A fresh database for one measurement; `drop()` removes it (with force). */
export interface BenchDb {
  name: string;
  url: string;
  /** The bench's own pool on it (progress polls, counts, stats). */
  sql: Sql;
  drop(): Promise<void>;
}

export async function createBenchDb(target: PgTarget, label: string, opts: { template?: string } = {}): Promise<BenchDb> {
  const name = `bench_${process.pid}_${++seq}_${label.replace(/[^a-z0-9]+/gi, '_').toLowerCase()}`.slice(0, 63);
  const admin = createDb({ url: target.adminUrl, max: 1, applicationName: 'pgdispatch-bench' });
  try {
    // FILE_COPY: cloning a large backlog template is a file copy, not a WAL-logged page-by-page copy.
    const fileCopy = Number.parseInt(target.version, 10) >= 15 ? ' strategy = file_copy' : '';
    const tpl = opts.template ? ` template ${opts.template}${fileCopy}` : '';
    for (let i = 0; ; i++) {
      try {
        await admin.unsafe(`create database ${name}${tpl}`);
        break;
      } catch (err) {
        if (i >= 20 || !/being accessed by other users/.test(String(err))) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await closeDb(admin);
  }
  const url = target.urlFor(name);
  const sql = createDb({ url, max: 4, applicationName: 'pgdispatch-bench' });
  return {
    name,
    url,
    sql,
    drop: async () => {
      await closeDb(sql, 1);
      await dropDatabase(target, name);
    },
  };
}

export async function dropDatabase(target: PgTarget, name: string): Promise<void> {
  const admin = createDb({ url: target.adminUrl, max: 1, applicationName: 'pgdispatch-bench' });
  try {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
  } finally {
    await closeDb(admin);
  }
}

/**
 * Waits until no session other than the bench's own (application_name pgdispatch-bench) is
 * connected to `db`: cumulative statistics are flushed when a backend exits.
 */
export async function waitForNoSessions(target: PgTarget, db: string, timeoutMs = 10_000): Promise<void> {
  const admin = createDb({ url: target.adminUrl, max: 1, applicationName: 'pgdispatch-bench' });
  try {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const [r] = await admin<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity where datname = ${db} and application_name <> 'pgdispatch-bench'`;
      if (!r || r.n === 0 || Date.now() > until) return;
      await sleep(20);
    }
  } finally {
    await closeDb(admin);
  }
}
