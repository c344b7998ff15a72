import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Sql } from './db.js';

/** Arbitrary but fixed: every pgdispatch process migrates under this advisory lock key. */
const MIGRATION_LOCK_KEY = 7_431_029_118;

/** The repository's `migrations/` folder, found relative to this module (src/ or dist/). */
export function defaultMigrationsDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../migrations');
}

export interface Migration {
  version: string;
  name: string;
  sql: string;
}

export async function loadMigrations(dir = defaultMigrationsDir()): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (f) => ({ version: f.slice(0, 4), name: f.replace(/\.sql$/, ''), sql: await readFile(path.join(dir, f), 'utf8') })),
  );
}

export interface MigrateResult {
  applied: string[];
  current: string | null;
}

/**
 * Applies pending migrations in order, all in one transaction under a transaction-level advisory
 * lock: concurrent migrators (many pods starting at once) queue on the lock, and the later ones
 * find nothing left to apply. A failed migration rolls back whole.
 */
export async function migrate(sql: Sql, opts: { dir?: string } = {}): Promise<MigrateResult> {
  const migrations = await loadMigrations(opts.dir);
  return sql.begin(async (tx) => {
    // Waiting for another pod's migration, or a long migration, must not hit the pool's statement timeout.
    await tx`set local statement_timeout = 0`;
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
    await tx`create table if not exists pgdispatch_migrations (
      version text primary key, name text not null, applied_at timestamptz not null default now())`;
    const done = new Set((await tx<{ version: string }[]>`select version from pgdispatch_migrations`).map((r) => r.version));
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await tx.unsafe(m.sql);
      await tx`insert into pgdispatch_migrations (version, name) values (${m.version}, ${m.name})`;
      applied.push(m.name);
    }
    return { applied, current: migrations.at(-1)?.name ?? null };
  });
}

export interface MigrationStatus {
  current: boolean;
  applied: string[];
  pending: string[];
}

/** Compares applied migrations with the ones on disk; used by /readyz. */
export async function migrationStatus(sql: Sql, opts: { dir?: string } = {}): Promise<MigrationStatus> {
  const migrations = await loadMigrations(opts.dir);
  const [exists] = await sql<{ ok: boolean }[]>`select to_regclass('pgdispatch_migrations') is not null as ok`;
  const done = exists?.ok ? new Set((await sql<{ version: string }[]>`select version from pgdispatch_migrations`).map((r) => r.version)) : new Set<string>();
  const pending = migrations.filter((m) => !done.has(m.version)).map((m) => m.name);
  return { current: pending.length === 0, applied: migrations.filter((m) => done.has(m.version)).map((m) => m.name), pending };
}
