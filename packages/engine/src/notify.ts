import type { Sql } from './db.js';

/** Channel every enqueue, release, retry and resume notifies, with the queue name as payload. */
export const JOBS_CHANNEL = 'pgdispatch_jobs';

export interface Listener {
  /** Stops listening (the connection is released). */
  stop(): Promise<void>;
}

/**
 * LISTENs for queue wake-ups. postgres.js keeps a dedicated connection for LISTEN and re-issues it
 * after a reconnect; `onReconnect` fires then, because notifications sent while disconnected are
 * lost and the caller should poll at once. Use a direct (non-PgBouncer) URL for `sql`.
 */
export async function listenForJobs(sql: Sql, onQueue: (queue: string) => void, onReconnect: () => void = () => {}): Promise<Listener> {
  let first = true;
  const sub = await sql.listen(JOBS_CHANNEL, (payload) => onQueue(payload), () => {
    if (!first) onReconnect();
    first = false;
  });
  return { stop: () => sub.unlisten() };
}
