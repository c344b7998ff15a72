import type { JobEvent } from '@pgdispatch/core/events';
import type { Sql } from '@pgdispatch/engine/db';
import { EVENTS_CHANNEL, jobEventsFetch, jobEventsList, parseEventNotification, type EventNotification } from '@pgdispatch/engine/queries/job-events';
import type { Logger } from '@pgdispatch/core/log';

/** `queue` of a filter that wants every queue's events (no queue name can be `*`). */
export const ALL_QUEUES = '*';

/** What a stream wants: every event of a queue (or of all, ALL_QUEUES), or the events of one job (which lives in `queue`). */
export interface EventFilter {
  queue: string;
  jobId?: number;
}

const wanted = (s: Sub, queue: string) => s.queue === ALL_QUEUES || s.queue === queue;

/** The stored-events query of a filter: by job, by queue, or every queue. */
export function listFilter(f: EventFilter): { jobId: number } | { queue: string } | { allQueues: true } {
  if (f.jobId !== undefined) return { jobId: f.jobId };
  return f.queue === ALL_QUEUES ? { allQueues: true } : { queue: f.queue };
}

interface Sub extends EventFilter {
  fn: (e: JobEvent) => void;
  /** Highest id delivered: where a resync after a lost LISTEN connection starts. */
  lastId: number;
}

export interface JobEventsOptions {
  /** Pool for the fetches (one per notification that some subscriber here wants). */
  sql: Sql;
  /** Connection for the one LISTEN (a direct URL behind PgBouncer). */
  listenSql: Sql;
  log: Logger;
  /** Observer: a notification was answered by a fetch of this many events. */
  onFetch?: (events: number) => void;
  /** How long the LISTEN outlives the last stream, in ms (default IDLE_UNLISTEN_MS). */
  idleUnlistenMs?: number;
}

/**
 * Fans job events out to this process's SSE streams. ONE LISTEN connection serves every stream;
 * a notification names a queue and exact event ids, and is fetched (one indexed query) only when
 * a stream here wants that queue (an all-queue stream wants every one) — so idle streams, and
 * events nobody here watches, cost no queries. Notifications arrive in commit order and are processed one at a time, so streams get
 * events in that order. After the LISTEN connection was lost (notifications sent meanwhile are
 * gone) every stream is resynced from the table after the last id it got.
 *
 * The LISTEN is held only while some stream is open here (and for IDLE_UNLISTEN_MS after the
 * last one closed): every claim and every completion notifies the events channel, and a listening
 * process is woken for each of those notifications — its LISTEN backend and its event loop — even
 * when no stream wants them. In role all that was a second wake-up per dispatch round on the path
 * a pickup takes. A stream that opens later LISTENs before it replays from the table, so it misses nothing.
 */
export const IDLE_UNLISTEN_MS = 10_000;
export class JobEvents {
  private readonly byQueue = new Map<string, Set<Sub>>();
  private listening: Promise<{ unlisten(): Promise<void> }> | undefined;
  private chain: Promise<void> = Promise.resolve();
  private first = true;
  /** The UNLISTEN of the last idle period, which a new LISTEN waits for. */
  private unlistening: Promise<void> = Promise.resolve();
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: JobEventsOptions) {}

  /** Is the events channel LISTENed now (or being LISTENed)? */
  get isListening(): boolean {
    return this.listening !== undefined;
  }

  /** Opens the LISTEN (idempotent); streams wait for it, so none misses an event committed later. */
  start(): Promise<void> {
    this.listening ??= this.unlistening.then(() => {
      this.first = true;
      return this.opts.listenSql.listen(EVENTS_CHANNEL, (p) => this.onNotify(p), () => {
        if (!this.first) this.enqueue(() => this.resync());
        this.first = false;
      });
    });
    const l = this.listening;
    return l.then(
      () => undefined,
      (err: unknown) => {
        if (this.listening === l) this.listening = undefined;
        throw err;
      },
    );
  }

  /**
   * Registers `fn` for events matching `filter` once LISTEN is active; returns the unsubscribe.
   * `afterId`: what the stream replays from, so a resync after a lost LISTEN never reaches back
   * before it (for the all-queue stream, that would be the whole table).
   */
  async subscribe(filter: EventFilter, fn: (e: JobEvent) => void, afterId = 0): Promise<() => void> {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    await this.start();
    const sub: Sub = { ...filter, fn, lastId: afterId };
    let set = this.byQueue.get(filter.queue);
    if (!set) this.byQueue.set(filter.queue, (set = new Set()));
    set.add(sub);
    return () => {
      set.delete(sub);
      if (set.size === 0 && this.byQueue.get(filter.queue) === set) this.byQueue.delete(filter.queue);
      if (this.byQueue.size === 0 && !this.idleTimer) {
        this.idleTimer = setTimeout(() => this.quiet(), this.opts.idleUnlistenMs ?? IDLE_UNLISTEN_MS);
        this.idleTimer.unref();
      }
    };
  }

  /** No stream is open: stop LISTENing (a new stream LISTENs again first). */
  private quiet(): void {
    this.idleTimer = undefined;
    const l = this.listening;
    if (this.byQueue.size > 0 || !l) return;
    this.listening = undefined;
    this.unlistening = l.then((sub) => sub.unlisten()).catch(() => {});
  }

  /** Open subscriptions in this process. */
  get subscribers(): number {
    let n = 0;
    for (const s of this.byQueue.values()) n += s.size;
    return n;
  }

  private onNotify(payload: string): void {
    const n = parseEventNotification(payload);
    if (!n) {
      this.opts.log.warn('malformed job event notification', { payload: payload.slice(0, 200) });
      return;
    }
    if (!this.wants(n.queue)) return; // nobody here streams this queue: no query
    this.enqueue(() => this.fetch(n));
  }

  private enqueue(fn: () => Promise<void>): void {
    this.chain = this.chain.then(fn).catch((err: unknown) => {
      this.opts.log.warn('job event fetch failed; resyncing streams', { error: String(err) });
      setTimeout(() => this.enqueue(() => this.resync()), 1_000).unref();
    });
  }

  private wants(queue: string): boolean {
    return this.byQueue.has(queue) || this.byQueue.has(ALL_QUEUES);
  }

  private async fetch(n: EventNotification): Promise<void> {
    if (!this.wants(n.queue)) return;
    const events = await jobEventsFetch(this.opts.sql, n);
    this.opts.onFetch?.(events.length);
    for (const e of events) this.deliver(e);
  }

  private deliver(e: JobEvent, only?: Sub): void {
    for (const sub of only ? [only] : [...(this.byQueue.get(e.queue) ?? []), ...(this.byQueue.get(ALL_QUEUES) ?? [])]) {
      if (!wanted(sub, e.queue) || (sub.jobId !== undefined && sub.jobId !== e.jobId)) continue;
      if (e.id > sub.lastId) sub.lastId = e.id;
      sub.fn(e);
    }
  }

  /** Re-reads, per stream, what was stored after the last event it got (streams drop repeats). */
  private async resync(): Promise<void> {
    for (const set of [...this.byQueue.values()]) {
      for (const sub of [...set]) {
        for (;;) {
          const page = await jobEventsList(this.opts.sql, { ...listFilter(sub), afterId: sub.lastId, limit: 500 });
          for (const e of page) this.deliver(e, sub);
          if (page.length < 500) break;
        }
      }
    }
  }

  async stop(): Promise<void> {
    clearTimeout(this.idleTimer);
    const l = this.listening;
    this.listening = undefined;
    this.byQueue.clear();
    if (l) await (await l.catch(() => undefined))?.unlisten().catch(() => {});
    await this.chain;
  }
}
