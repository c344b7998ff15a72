import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import type { Whoami } from './api.js';

/** What the signed-in key may do; admin actions read it to disable themselves with the reason. */
export const SessionContext = createContext<Whoami>({ authenticated: false, scopes: [], open: false });
export const useSession = () => useContext(SessionContext);

export function isAdmin(s: Whoami): boolean {
  return s.scopes.includes('admin');
}

/** Why an admin button is disabled, or undefined when it is not. */
export function adminBlock(s: Whoami): string | undefined {
  return isAdmin(s) ? undefined : 'needs an API key with the admin scope';
}

/**
 * Loads `load()` now, on `reload()`, and `intervalMs` after the last load (skipped while the tab
 * is hidden, resumed on return), keeping the last good value on screen when a refresh fails.
 */
export function usePoll<T>(load: (signal: AbortSignal) => Promise<T>, intervalMs: number, deps: unknown[]) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const loadRef = useRef(load);
  loadRef.current = load;
  const tick = useRef<() => void>(() => {});
  useEffect(() => {
    const ctl = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let busy = false;
    let again = false;
    setData(undefined);
    setError(undefined);
    const run = async () => {
      if (timer) clearTimeout(timer);
      // A reload asked for during a fetch runs after it: that fetch may have read the old state.
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        const v = await loadRef.current(ctl.signal);
        if (!ctl.signal.aborted) {
          setData(v);
          setError(undefined);
        }
      } catch (err) {
        if (!ctl.signal.aborted) setError(err instanceof Error ? err : new Error(String(err)));
      } finally {
        busy = false;
        if (again && !ctl.signal.aborted) {
          again = false;
          void run();
          return;
        }
        if (!ctl.signal.aborted) timer = setTimeout(() => void (document.hidden ? schedule() : run()), intervalMs);
      }
    };
    const schedule = () => {
      timer = setTimeout(() => void (document.hidden ? schedule() : run()), intervalMs);
    };
    tick.current = () => void run();
    void run();
    return () => {
      ctl.abort();
      if (timer) clearTimeout(timer);
    };
  }, deps);
  const reload = useCallback(() => tick.current(), []);
  return { data, error, reload };
}

/** The hash route (`#/jobs/12?x=1`) as a path and its query. */
export function useRoute(): { path: string; query: URLSearchParams } {
  const read = () => {
    const raw = location.hash.replace(/^#/, '') || '/';
    const [path, q] = raw.split('?', 2);
    return { path: path || '/', query: new URLSearchParams(q ?? '') };
  };
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** Current time, refreshed every `ms`, for "… ago" labels. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
