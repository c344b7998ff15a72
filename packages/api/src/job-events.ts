import type { Sql } from '@pgdispatch/engine/db';
import { EVENTS_CHANNEL } from '@pgdispatch/engine/queries/job-events';
import type { Logger } from '@pgdispatch/core/log';

/**
 * Fans out job events (progress) from NOTIFY to SSE subscribers of this process. One LISTEN per
 * process, opened on the first subscriber; events of jobs nobody streams are dropped.
 */
export class JobEvents {
  private readonly subs = new Map<number, Set<(data: unknown) => void>>();
  private listening: Promise<{ unlisten(): Promise<void> }> | undefined;

  constructor(private readonly sql: Sql, private readonly log: Logger) {}

  subscribe(id: number, fn: (data: unknown) => void): () => void {
    this.listening ??= this.sql.listen(EVENTS_CHANNEL, (payload) => this.dispatch(payload));
    this.listening.catch((err: unknown) => {
      this.log.warn('event LISTEN failed', { error: String(err) });
      this.listening = undefined;
    });
    let set = this.subs.get(id);
    if (!set) this.subs.set(id, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.subs.delete(id);
    };
  }

  private dispatch(payload: string): void {
    let event: { id?: unknown; data?: unknown };
    try {
      event = JSON.parse(payload) as typeof event;
    } catch {
      return;
    }
    if (typeof event.id !== 'number') return;
    for (const fn of this.subs.get(event.id) ?? []) fn(event.data);
  }

  async stop(): Promise<void> {
    const l = this.listening;
    this.listening = undefined;
    if (l) await (await l.catch(() => undefined))?.unlisten().catch(() => {});
  }
}
