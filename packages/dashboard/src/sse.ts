import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { authHeaders } from './api.js';

/**
 * Server-sent events over fetch(), so the API key travels in the Authorization header.
 * EventSource cannot send headers: it would need the key in the URL (history, proxy logs,
 * Referer) or a cookie (CSRF). The parsing is eventsource-parser's; reconnects send
 * Last-Event-ID so a server that numbers its events resumes without gaps.
 */
export function streamEvents(
  path: string,
  handlers: { onEvent: (e: EventSourceMessage) => void; onOpen?: () => void; onError?: (err: unknown) => void; shouldReconnect?: () => boolean },
): () => void {
  const ctl = new AbortController();
  let lastId: string | undefined;
  let delayMs = 500;
  const run = async () => {
    while (!ctl.signal.aborted) {
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream', ...authHeaders() };
        if (lastId !== undefined) headers['last-event-id'] = lastId;
        const res = await fetch(path, { headers, signal: ctl.signal, credentials: 'omit', cache: 'no-store' });
        if (!res.ok || !res.body) throw new Error(`event stream answered ${res.status}`);
        handlers.onOpen?.();
        delayMs = 500;
        const parser = createParser({
          onEvent: (e) => {
            if (e.id !== undefined) lastId = e.id;
            handlers.onEvent(e);
          },
          onRetry: (ms) => (delayMs = ms),
        });
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          parser.feed(value);
        }
      } catch (err) {
        if (ctl.signal.aborted) return;
        handlers.onError?.(err);
      }
      if (ctl.signal.aborted || (handlers.shouldReconnect && !handlers.shouldReconnect())) return;
      await new Promise((r) => setTimeout(r, delayMs));
      delayMs = Math.min(delayMs * 2, 10_000);
    }
  };
  void run();
  return () => ctl.abort();
}
