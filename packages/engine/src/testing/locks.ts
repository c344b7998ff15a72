import { closeDb, createDb, type Sql } from '../db.js';

/**
 * Opens a transaction on `pool`, runs `statement` in it (taking whatever locks it takes) and keeps
 * the transaction open until `release()` (tests only): the other side of a lock conflict. Resolves
 * once the statement has run; `done` settles when the transaction has ended.
 */
export async function holdTransaction(pool: Sql, statement: string): Promise<{ release(): void; done: Promise<unknown> }> {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const done = pool.begin(async (t) => {
    await t.unsafe(statement);
    entered();
    await held;
  });
  await Promise.race([inside, done]);
  return { release, done };
}

/**
 * Resolves once no other session of the database at `url` has run a statement or held a
 * transaction open for `quietMs` (tests only), e.g. a server's start-up maintenance is over.
 * Its own one-connection pool, closed before it returns.
 */
export async function untilDatabaseQuiet(url: string, opts: { quietMs?: number; timeoutMs?: number } = {}): Promise<void> {
  const quietMs = opts.quietMs ?? 300;
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  const sql = createDb({ url, max: 1 });
  try {
    let quietSince = Date.now();
    for (;;) {
      const [r] = await sql<{ busy: number }[]>`
        select count(*)::int as busy from pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'
           and (state in ('active', 'idle in transaction') or state_change > now() - ${quietMs} * interval '1 ms')`;
      if (r!.busy > 0) quietSince = Date.now();
      else if (Date.now() - quietSince >= quietMs) return;
      if (Date.now() > deadline) throw new Error(`the database was not quiet for ${quietMs} ms within the timeout`);
      await new Promise((res) => setTimeout(res, 50));
    }
  } finally {
    await closeDb(sql);
  }
}
