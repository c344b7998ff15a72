import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, inject } from 'vitest';
import type { DbOptions, Sql } from '../db.js';
import { closeDb, createDb } from '../db.js';

export interface TestDatabase {
  url: string;
  sql: Sql;
  /** Opens another pool on the same database (separate connections for concurrency tests; `onQuery` counts statements). */
  connect(max?: number, opts?: Pick<DbOptions, 'onQuery' | 'statementTimeoutMs'>): Sql;
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database cloned from the run's template (graphile-worker's habit): cheap,
 * isolated per file, safe for concurrency and LISTEN/NOTIFY tests. Files run in parallel.
 */
export async function createTestDatabase(opts: { max?: number } = {}): Promise<TestDatabase> {
  const adminUrl = inject('pgAdminUrl');
  const template = inject('pgTemplate');
  const template_pid = template.replace('pgdispatch_tpl_', '');
  const name = `pgdispatch_t_${template_pid}_${randomBytes(5).toString('hex')}`;
  const admin = createDb({ url: adminUrl, max: 1 });
  try {
    for (let i = 0; ; i++) {
      try {
        await admin.unsafe(`create database ${name} template ${template}`);
        break;
      } catch (err) {
        // Two clones of one template at the same instant can collide on the template's lock.
        if (i >= 20 || !/being accessed by other users/.test(String(err))) throw err;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
  } finally {
    await closeDb(admin);
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pools: Sql[] = [];
  const connect = (max = 10, opts: Pick<DbOptions, 'onQuery' | 'statementTimeoutMs'> = {}) => {
    const s = createDb({ url, max, ...opts });
    pools.push(s);
    return s;
  };
  const sql = connect(opts.max ?? 10);
  return {
    url,
    sql,
    connect,
    drop: async () => {
      await Promise.all(pools.map((p) => closeDb(p, 1)));
      const a = createDb({ url: adminUrl, max: 1 });
      await a.unsafe(`drop database if exists ${name} with (force)`);
      await closeDb(a);
    },
  };
}

/**
 * Registers beforeAll/afterAll for a fresh database for the calling test file and returns a
 * handle whose properties read the live database (valid inside tests and hooks).
 */
/** Runs `fn` on a database of its own (createTestDatabase), dropped afterwards whatever happens. */
export async function withTestDatabase<T>(fn: (db: TestDatabase) => Promise<T>): Promise<T> {
  const own = await createTestDatabase();
  try {
    return await fn(own);
  } finally {
    await own.drop();
  }
}

export function useTestDatabase(opts: { max?: number } = {}): TestDatabase {
  let inner: TestDatabase | undefined;
  beforeAll(async () => {
    inner = await createTestDatabase(opts);
  });
  afterAll(async () => {
    await inner?.drop();
  });
  const get = (): TestDatabase => {
    if (!inner) throw new Error('the test database is only available inside tests and hooks');
    return inner;
  };
  return {
    get url() {
      return get().url;
    },
    get sql() {
      return get().sql;
    },
    connect: (max?: number, opts?: Pick<DbOptions, 'onQuery' | 'statementTimeoutMs'>) => get().connect(max, opts),
    drop: () => get().drop(),
  };
}
