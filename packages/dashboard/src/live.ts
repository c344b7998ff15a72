import { useEffect, useRef } from 'preact/hooks';
import { streamEvents } from './sse.js';

const POLL_SLOT = 'pgdispatch.fallbackPollMs';

/**
 * The slow poll behind the event streams, in ms (default 15 s): it refreshes what events do not
 * carry (oldest-waiting ages, queues created without a job, a missed event). sessionStorage may
 * override it (at least 1 s) so a test can set it long and prove that updates come from the stream.
 */
export function fallbackPollMs(): number {
  const v = Number(sessionStorage.getItem(POLL_SLOT) ?? '');
  return Number.isFinite(v) && v >= 1000 ? v : 15_000;
}

/** Refetch at most this often while events pour in: a burst of 1000 state changes is 2 reloads a second, not 1000. */
const MIN_GAP_MS = 500;

/**
 * Calls `reload` when a job changes state, as told by the all-queue stream `GET /v1/events`
 * (one connection whatever the number of queues; a browser allows about six per origin). At most
 * once per MIN_GAP_MS, the last one trailing so the final state is always fetched; once when the
 * stream (re)opens, for what happened while it was down; and, with `settleMs`, once more that long
 * after the last event, for answers the server caches (`GET /v1/stats/queues` reuses one for
 * 2 s, so a refetch right after an event may predate it). Progress events are ignored (they
 * change no list). `queue`: only that queue's events count.
 */
export function useLiveReload(reload: () => void, opts: { queue?: string; settleMs?: number } = {}): void {
  const reloadRef = useRef(reload);
  reloadRef.current = reload;
  const { queue, settleMs } = opts;
  useEffect(() => {
    let last = 0;
    let pending: ReturnType<typeof setTimeout> | undefined;
    let settle: ReturnType<typeof setTimeout> | undefined;
    const fire = () => {
      pending = undefined;
      last = Date.now();
      reloadRef.current();
    };
    const soon = () => {
      pending ??= setTimeout(fire, Math.max(0, last + MIN_GAP_MS - Date.now()));
      if (settleMs !== undefined) {
        if (settle) clearTimeout(settle);
        settle = setTimeout(() => reloadRef.current(), settleMs);
      }
    };
    const stop = streamEvents('/v1/events', {
      // The stream starts at "now": refetch once it is open, so nothing between the page's first
      // load (or a dropped connection) and the stream is missed.
      onOpen: () => soon(),
      onEvent: (e) => {
        if (e.event !== 'state' && e.event !== 'cancel_requested') return;
        if (queue) {
          try {
            if ((JSON.parse(e.data) as { queue?: unknown }).queue !== queue) return;
          } catch {
            return; // not an event of ours
          }
        }
        soon();
      },
    });
    return () => {
      stop();
      if (pending) clearTimeout(pending);
      if (settle) clearTimeout(settle);
    };
  }, [queue, settleMs]);
}
