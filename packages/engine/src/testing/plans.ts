import { closeDb, createDb, type Sql } from '../db.js';

/**
 * Runs `fn` on a one-connection pool of `url` whose statements' plans come back as notices from
 * auto_explain (shipped with PostgreSQL, loaded for this session only), after `settings`.
 */
export async function withPlans(url: string, settings: string, fn: (pool: Sql, plans: string[]) => Promise<void>): Promise<void> {
  const plans: string[] = [];
  const pool = createDb({ url, max: 1, onNotice: (n) => plans.push(n.message) });
  try {
    await pool.unsafe(`load 'auto_explain'`);
    await pool.unsafe(`set auto_explain.log_min_duration = 0; set auto_explain.log_level = 'notice'; ${settings}`);
    await fn(pool, plans);
  } finally {
    await closeDb(pool);
  }
}

export interface JobsScan {
  index: string;
  rows: number;
  /** Rows the scan's filter removed. */
  removed: number;
}

/**
 * The `jobs` index scans (other than jobs_pkey) of a statement's EXPLAIN ANALYZE, run in a
 * transaction that is rolled back. `generic`: the plan PostgreSQL caches for a prepared statement
 * after its fifth execution (`plan_cache_mode = force_generic_plan`, PREPARE/EXECUTE), instead of
 * the custom plan an unnamed statement gets for its actual parameters.
 */
export async function scanned(sql: Sql, text: string, params: unknown[], opts: { generic?: boolean } = {}): Promise<JobsScan[]> {
  let plan: unknown;
  await sql
    .begin(async (tx) => {
      let explained = `explain (analyze, format json) ${text}`;
      if (opts.generic) {
        await tx.unsafe('set local plan_cache_mode = force_generic_plan');
        await tx.unsafe(`prepare pgd_scanned as ${text}`);
        // EXECUTE's arguments cannot be bound parameters of unknown type: literals (tests' own values).
        explained = `explain (analyze, format json) execute pgd_scanned(${params.map(literal).join(', ')})`;
      }
      try {
        const [row] = await tx.unsafe<{ 'QUERY PLAN': unknown }[]>(explained, opts.generic ? [] : (params as never[]));
        plan = row!['QUERY PLAN'];
      } finally {
        // PREPARE is not transactional: the rollback would leave it on this pooled connection.
        if (opts.generic) await tx.unsafe('deallocate pgd_scanned');
      }
      throw new Error('rollback');
    })
    .catch((err: unknown) => {
      if (String(err) !== 'Error: rollback') throw err;
    });
  const found: JobsScan[] = [];
  const walk = (n: Record<string, unknown>) => {
    if (typeof n['Index Name'] === 'string' && n['Relation Name'] === 'jobs' && n['Index Name'] !== 'jobs_pkey') {
      found.push({ index: n['Index Name'], rows: Number(n['Actual Rows']), removed: Number(n['Rows Removed by Filter'] ?? 0) });
    }
    for (const child of (n.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
  };
  walk((plan as { Plan: Record<string, unknown> }[])[0]!.Plan);
  return found;
}

/** A number, string or array of strings as an SQL literal. */
function literal(v: unknown): string {
  if (typeof v === 'number') return String(v);
  const quote = (x: unknown) => `'${String(x).replaceAll("'", "''")}'`;
  if (Array.isArray(v)) return `array[${v.map(quote).join(', ')}]::text[]`;
  return quote(v);
}
