/** Human durations: 0.4 s, 12 s, 3 min, 2 h 5 min, 3 d. */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  return `${Math.round(seconds / 86_400)} d`;
}

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—';
  return `${duration((now - Date.parse(iso)) / 1000)} ago`;
}

/** "in 3 min" for a future time, "… ago" for a past one. */
export function fromNow(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const s = (Date.parse(iso) - now) / 1000;
  return s >= 0 ? `in ${duration(s)}` : `${duration(-s)} ago`;
}

/** A rate limit as people say it: "10 / s", "100 / 1 min", "5 / 250 ms". */
export function rate(limit: number | null, intervalMs: number): string {
  if (limit === null) return 'unlimited';
  const per = intervalMs === 1000 ? 's' : intervalMs === 60_000 ? 'min' : intervalMs === 3_600_000 ? 'h' : intervalMs % 1000 === 0 ? duration(intervalMs / 1000) : `${intervalMs} ms`;
  return `${limit.toLocaleString()} / ${per}`;
}

export function time(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : d.toLocaleString();
}

/** JSON for display; rendered as a text node (never as HTML), so markup in it stays text. */
export function json(value: unknown): string {
  if (value === undefined) return '—';
  try {
    return JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    return String(value);
  }
}

/** `{ current, total }` progress, if that is what a task reported. */
export function progressOf(data: unknown): { current: number; total: number } | null {
  if (!data || typeof data !== 'object') return null;
  const { current, total } = data as { current?: unknown; total?: unknown };
  if (typeof current !== 'number' || typeof total !== 'number' || !(total > 0) || !Number.isFinite(current)) return null;
  return { current: Math.max(0, Math.min(current, total)), total };
}
