import { closeDb, createDb } from '@pgdispatch/engine/db';
import type { PgTarget } from './pg-target.js';
import { WATCHER } from '../systems/types.js';

/** What a run's statements did, grouped by role, from pg_stat_statements (when loaded). */
export interface StatementSummary {
  /** All statements the run issued in its database. */
  statements: number;
  /** Server execution time of all of them, ms. */
  execMs: number;
  claim: { calls: number; rows: number; execMs: number };
  complete: { calls: number; rows: number; execMs: number };
  /** The five costliest statements (text shortened). */
  top: { query: string; calls: number; rows: number; meanMs: number; totalMs: number }[];
}

/** Claim statements of all three systems take row locks with SKIP LOCKED. */
const CLAIM = /skip\s+locked/i;
/**
 * Completion statements (pg_stat_statements shows literals as $n, so match on shape): pgdispatch's
 * jobCompleteMany sets `result = l.result::jsonb` from its locked rows, graphile-worker deletes from
 * _private_jobs, pg-boss sets completed_on.
 */
const COMPLETE = /result = l\.result::jsonb|delete\s+from\s+\S*_private_jobs|completed_on\s*=/i;

export async function statementSummary(target: PgTarget, dbName: string): Promise<StatementSummary | undefined> {
  if (!target.pgss) return undefined;
  const admin = createDb({ url: target.adminUrl, max: 1, applicationName: 'pgdispatch-bench' });
  try {
    // Top-level statements only: the server preloads pg_stat_statements with track = all, which
    // also lists statements run inside functions and triggers, whose time their caller's entry
    // already includes (before, pgdispatch's event trigger and graphile-worker's add_jobs body were
    // counted twice).
    const rows = await admin<{ query: string; calls: number; rows: number; total: number }[]>`
      select query, calls::float8 as calls, rows::float8 as rows, total_exec_time::float8 as total
        from pg_stat_statements where dbid = (select oid from pg_database where datname = ${dbName}) and toplevel
           and query not like ${'%' + WATCHER + '%'}`;
    const sum = { statements: 0, execMs: 0, claim: { calls: 0, rows: 0, execMs: 0 }, complete: { calls: 0, rows: 0, execMs: 0 } };
    for (const r of rows) {
      sum.statements += r.calls;
      sum.execMs += r.total;
      const group = CLAIM.test(r.query) ? sum.claim : COMPLETE.test(r.query) ? sum.complete : undefined;
      if (group) {
        group.calls += r.calls;
        group.rows += r.rows;
        group.execMs += r.total;
      }
    }
    const top = [...rows]
      .sort((a, b) => b.total - a.total)
      .slice(0, 5)
      .map((r) => ({ query: r.query.replace(/\s+/g, ' ').slice(0, 100), calls: r.calls, rows: r.rows, meanMs: r.total / Math.max(1, r.calls), totalMs: r.total }));
    return { ...sum, top };
  } finally {
    await closeDb(admin);
  }
}
