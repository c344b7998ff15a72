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
  /** Seconds before an unused connection closes (default 30; 0: never). */
  idleTimeout?: number;
  /** Seconds to wait for a connection (default 10; fractions allowed). */
  connectTimeout?: number;
  /**
   * Server-side `statement_timeout` and `idle_in_transaction_session_timeout` of every
   * connection, in ms (default: none, PostgreSQL's 0). A statement stuck behind a lock, or a
   * transaction whose client froze, ends with an error instead of holding rows indefinitely.
   */
  statementTimeoutMs?: number;
  /**
   * Plan every prepared statement generically (`plan_cache_mode = force_generic_plan` for the
   * session, sent at connect). Only for a pool that runs statements whose generic plan is their
   * custom plan (the dispatcher's gated claims, job-claim.ts): then a claim is one statement instead
   * of a transaction that sets the mode locally. Not for a pool behind PgBouncer, which refuses
   * startup parameters it does not know.
   */
  genericPlans?: boolean;
  /** application_name reported to Postgres (default pgdispatch). */
  applicationName?: string;
  /** Called with the text of every statement sent (tests count statements with it). */
  onQuery?: (text: string) => void;
  /** Called with every notice the server sends (default: dropped). */
  onNotice?: (notice: { message: string }) => void;
}

/** Longest wait before a connection is retried after a failure, in seconds. */
export const RECONNECT_BACKOFF_MAX_SECONDS = 0.25;

/**
 * Reconnect delay after `retries` failed connections: 25 ms doubling, capped at 250 ms, with
 * jitter. postgres.js's default grows to 20 s (`min(3^n / 100, 20)`), so after a 10 s outage a
 * pool sat out up to ~9 s of backoff while PostgreSQL was already back, and a query issued during
 * the outage waited for that backoff before failing. A refused connection costs PostgreSQL
 * nothing, so retrying 4× a second per pool connection is cheap.
 */
export function reconnectBackoffSeconds(retries: number): number {
  return (0.5 + Math.random() / 2) * Math.min(0.025 * 2 ** retries, RECONNECT_BACKOFF_MAX_SECONDS);
}

/**
 * Opens a postgres.js pool. int8 is parsed to number: job ids stay far below 2^53, and numbers keep
 * the JSON API plain. Notices are dropped (migrations' `if not exists` would be noisy).
 */
export function createDb(opts: DbOptions): Sql {
  const onNotice = opts.onNotice;
  const timeouts: Record<string, number> = opts.statementTimeoutMs === undefined
    ? {}
    : { statement_timeout: opts.statementTimeoutMs, idle_in_transaction_session_timeout: opts.statementTimeoutMs };
  return postgres(opts.url, {
    max: opts.max ?? 10,
    prepare: opts.prepare ?? true,
    idle_timeout: opts.idleTimeout ?? 30,
    connect_timeout: opts.connectTimeout ?? 10,
    backoff: reconnectBackoffSeconds,
    onnotice: (n) => onNotice?.({ message: String(n.message) }),
    ...(opts.onQuery && { debug: (_connection: number, text: string) => opts.onQuery?.(text) }),
    connection: { application_name: opts.applicationName ?? 'pgdispatch', ...timeouts, ...(opts.genericPlans ? { plan_cache_mode: 'force_generic_plan' } : {}) },
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
