/**
 * Reads pgdispatch event streams (`GET /v1/jobs/:id/events`, `GET /v1/queues/:name/events`) with
 * fetch streaming, so the API key travels in the Authorization header (EventSource cannot send
 * one). On a dropped connection it reconnects with `Last-Event-ID` = the last id it yielded: the
 * server replays from there, so the caller sees every event once, in order.
 */
import type { JobEvent } from '@pgdispatch/core/events';
import { DispatchError, type ErrorCode } from '@pgdispatch/core/errors';

/** A job event as it travels over JSON (createdAt is an ISO string). */
export type WireJobEvent = Omit<JobEvent, 'createdAt'> & { createdAt: string };

export interface EventStreamOptions {
  url: string;
  apiKey?: string;
  /** Resume after this event id (default: from the start of the stored history). */
  lastEventId?: number;
  signal?: AbortSignal;
  /** Reconnect attempts after a dropped connection before giving up (default 10). */
  reconnects?: number;
  fetch?: typeof fetch;
  /** Reconnect also when the server ends the stream cleanly (queue streams; default false). */
  reconnectOnEnd?: boolean;
}

interface SseMessage {
  id?: string;
  event: string;
  data: string;
}

/** Incremental text/event-stream parser (comments and unknown fields are ignored). */
export function createSseParser(onMessage: (m: SseMessage) => void): (chunk: string) => void {
  let buf = '';
  let msg: { id?: string; event?: string; data: string[] } = { data: [] };
  return (chunk) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.search(/\r\n|\n|\r/)) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (msg.data.length > 0) onMessage({ ...(msg.id !== undefined && { id: msg.id }), event: msg.event ?? 'message', data: msg.data.join('\n') });
        msg = { data: [] };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') msg.data.push(value);
      else if (field === 'event') msg.event = value;
      else if (field === 'id') msg.id = value;
    }
  };
}

/** Yields the events of one stream until the server ends it (a job's final state) or `signal` aborts. */
export async function* readEventStream(opts: EventStreamOptions): AsyncGenerator<WireJobEvent> {
  const doFetch = opts.fetch ?? fetch;
  let last = opts.lastEventId;
  let failures = 0;
  for (;;) {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`;
    if (last !== undefined) headers['last-event-id'] = String(last);
    let res: Response;
    try {
      res = await doFetch(opts.url, { headers, ...(opts.signal && { signal: opts.signal }) });
    } catch (err) {
      if (opts.signal?.aborted || ++failures > (opts.reconnects ?? 10)) throw err;
      await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** failures, 5_000)));
      continue;
    }
    if (!res.ok || !res.body) {
      const body = (await res.json().catch(() => ({}))) as { error?: { code?: ErrorCode; message?: string; details?: unknown } };
      throw new DispatchError(body.error?.code ?? 'internal', body.error?.message ?? `HTTP ${res.status}`, { details: body.error?.details });
    }
    const queue: WireJobEvent[] = [];
    const parse = createSseParser((m) => {
      if (m.event === 'error') throw new DispatchError('unavailable', `stream failed: ${m.data}`);
      queue.push(JSON.parse(m.data) as WireJobEvent);
    });
    const decoder = new TextDecoder();
    const reader = res.body.getReader();
    let dropped = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parse(decoder.decode(value, { stream: true }));
        while (queue.length > 0) {
          const e = queue.shift()!;
          last = e.id;
          failures = 0;
          yield e;
        }
      }
    } catch (err) {
      if (opts.signal?.aborted || err instanceof DispatchError) throw err;
      dropped = true; // connection lost mid-stream: resume after `last`
    } finally {
      await reader.cancel().catch(() => {});
    }
    if (!dropped && !opts.reconnectOnEnd) return;
    if (++failures > (opts.reconnects ?? 10)) throw new DispatchError('unavailable', 'event stream kept dropping');
  }
}
