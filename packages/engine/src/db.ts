import postgres from 'postgres';

/** A pool or a transaction: every engine operation takes one, so callers compose transactions. */
export type Sql = postgres.Sql;
export type Exec = postgres.Sql | postgres.TransactionSql;

export interface DbOptions {
  url: string;
  /** Pool size (default 10). */
  max?: number;
  /** Server-side prepared statements (default true); false behind PgBouncer in transaction mode. */
  prepare?: boolean;
  /** Seconds before an unused connection closes (default 30). */
  idleTimeout?: number;
  /** Seconds to wait for a connection (default 10). */
  connectTimeout?: number;
  /** application_name reported to Postgres (default pgdispatch). */
  applicationName?: string;
}

/**
 * Opens a postgres.js pool. int8 is parsed to number: job ids stay far below 2^53, and numbers keep
 * the JSON API plain. Notices are dropped (migrations' `if not exists` would be noisy).
 */
export function createDb(opts: DbOptions): Sql {
  return postgres(opts.url, {
    max: opts.max ?? 10,
    prepare: opts.prepare ?? true,
    idle_timeout: opts.idleTimeout ?? 30,
    connect_timeout: opts.connectTimeout ?? 10,
    onnotice: () => {},
    connection: { application_name: opts.applicationName ?? 'pgdispatch' },
    types: {
      bigint: { to: 20, from: [20], serialize: (x: number | bigint) => String(x), parse: (x: string) => Number(x) },
    },
  });
}

/** Closes the pool, waiting up to `timeoutSeconds` (default 5) for queries in flight. */
export async function closeDb(sql: Sql, timeoutSeconds = 5): Promise<void> {
  await sql.end({ timeout: timeoutSeconds });
}

/** Runs `fn` in a transaction when `exec` is a pool, or inside the caller's transaction. */
export async function inTx<T>(exec: Exec, fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  if ('savepoint' in exec) return fn(exec as postgres.TransactionSql);
  return (exec as postgres.Sql).begin((tx) => fn(tx)) as Promise<T>;
}
