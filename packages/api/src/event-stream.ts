import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { JobEvent } from '@pgdispatch/core/events';
import { FINAL_STATES, type JobState } from '@pgdispatch/core/types';
import type { Sql } from '@pgdispatch/engine/db';
import { jobEventsList } from '@pgdispatch/engine/queries/job-events';
import { listFilter, type EventFilter, type JobEvents } from './job-events.js';

/** Ids a stream already wrote, bounded (insertion order = eviction order). */
class RecentIds {
  private readonly ids = new Set<number>();
  constructor(private readonly cap: number) {}
  has(id: number): boolean {
    return this.ids.has(id);
  }
  add(id: number): void {
    this.ids.add(id);
    if (this.ids.size > this.cap) this.ids.delete(this.ids.values().next().value as number);
  }
}

const REPLAY_PAGE = 500;

export const isFinalStateEvent = (e: JobEvent): boolean =>
  e.type === 'state' && FINAL_STATES.includes((e.data as { state?: JobState } | null)?.state as JobState);

/** What every event stream of an app shares. */
export interface StreamDeps {
  hub: JobEvents;
  sql: Sql;
  /** Interval of `: keep-alive` comments, in ms. */
  keepAliveMs: number;
  onSent?: (e: JobEvent) => void;
  onOpen?: () => void;
  onClose?: () => void;
}

export interface EventStreamOptions extends StreamDeps {
  filter: EventFilter;
  /** Replay starts after this id (Last-Event-ID); 0 = the whole stored history. */
  afterId: number;
  /** Job streams: end after a final state event, or after the replay when the job was already final. */
  endsOnFinal: boolean;
  /** The job was in a final state before the subscription was made. */
  alreadyFinal?: boolean;
}

/**
 * An SSE response of job events with replay and live delivery, without gaps or repeats across
 * the switch: (1) subscribe to live events first and buffer them; (2) replay stored events after
 * `afterId` from the table; (3) write the buffer, skipping ids already written, then write live
 * events as they come. Anything committed before the replay read is in the replay; anything
 * committed after LISTEN was active (the hub waits for it) is in the buffer; the overlap is
 * dropped by id. Ids are not compared with `<=`: in a queue stream, a transaction holding a lower
 * id may commit after one with a higher id, and that event must still go out.
 */
export async function eventStream(c: Context, opts: EventStreamOptions): Promise<Response> {
  let buffer: JobEvent[] | null = [];
  let write: (e: JobEvent) => void = () => {};
  const unsubscribe = await opts.hub.subscribe(opts.filter, (e) => (buffer ? buffer.push(e) : write(e)), opts.afterId);
  return streamSSE(
    c,
    async (stream) => {
      opts.onOpen?.();
      const seen = new RecentIds(100_000);
      let out: Promise<void> = Promise.resolve();
      let finish: () => void = () => {};
      const closed = new Promise<void>((resolve) => (finish = resolve));
      let ended = false;
      const send = (e: JobEvent) => {
        if (ended || seen.has(e.id)) return;
        seen.add(e.id);
        if (opts.endsOnFinal && isFinalStateEvent(e)) ended = true;
        out = out.then(async () => {
          await stream.writeSSE({ id: String(e.id), event: e.type, data: JSON.stringify(e) });
          opts.onSent?.(e);
          if (ended) finish();
        });
      };
      write = send;
      stream.onAbort(() => finish());
      const keepAlive = setInterval(() => {
        out = out.then(() => stream.write(': keep-alive\n\n')).then(() => undefined);
      }, opts.keepAliveMs);
      try {
        let cursor = opts.afterId;
        while (!ended && !stream.aborted) {
          const page = await jobEventsList(opts.sql, { ...listFilter(opts.filter), afterId: cursor, limit: REPLAY_PAGE });
          for (const e of page) send(e);
          cursor = page.at(-1)?.id ?? cursor;
          if (page.length < REPLAY_PAGE) break;
        }
        const buffered = buffer ?? [];
        buffer = null; // from here on, live events are written directly (same tick: order kept)
        for (const e of buffered) send(e);
        if (opts.endsOnFinal && opts.alreadyFinal && !ended) {
          ended = true;
          out = out.then(() => finish());
        }
        await closed;
        await out;
      } finally {
        clearInterval(keepAlive);
        unsubscribe();
        opts.onClose?.();
      }
    },
    async (err, stream) => {
      // Mid-stream failure (e.g. the database went away during replay): say so, then close.
      await stream.writeSSE({ event: 'error', data: JSON.stringify({ code: 'unavailable', message: String(err instanceof Error ? err.message : err) }) }).catch(() => {});
    },
  );
}
