import type { Sql } from '../db.js';

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
