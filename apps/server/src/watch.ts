import type { WireJobEvent } from '@pgdispatch/client/events';

/** `{ current, total }` with finite numbers and total > 0: what `jobs watch` draws as a bar. */
export function progressFraction(data: unknown): { current: number; total: number } | null {
  if (typeof data !== 'object' || data === null) return null;
  const { current, total } = data as { current?: unknown; total?: unknown };
  if (typeof current !== 'number' || typeof total !== 'number' || !Number.isFinite(current) || !Number.isFinite(total) || total <= 0) return null;
  return { current, total };
}

/** `[██████░░░░░░░░░░]  37% 37/100`, `width` cells wide; the fraction is clamped to 0..1. */
export function progressBar(current: number, total: number, width = 24): string {
  const f = Math.min(1, Math.max(0, current / total));
  const full = Math.round(f * width);
  return `[${'█'.repeat(full)}${'░'.repeat(width - full)}] ${String(Math.floor(f * 100)).padStart(3)}% ${current}/${total}`;
}

/** One line for an event of `pgdispatch jobs watch`. */
export function renderEvent(e: WireJobEvent): string {
  const time = e.createdAt.slice(11, 23);
  if (e.type === 'progress') {
    const p = progressFraction(e.data);
    return `${time} progress ${p ? progressBar(p.current, p.total) : JSON.stringify(e.data)}`;
  }
  const d = (e.data ?? {}) as { state?: string; attempt?: number; error?: { message?: string }; runAt?: string };
  if (e.type === 'cancel_requested') return `${time} cancel requested`;
  let line = `${time} ${d.state} (attempt ${d.attempt})`;
  if (d.error?.message) line += `: ${d.error.message}`;
  if (d.runAt) line += `, next attempt at ${d.runAt}`;
  return line;
}

/**
 * Prints a job's event stream. On a terminal, successive progress bars redraw one line; piped
 * output gets one line per event. Returns the final state (or undefined if the stream ended
 * without one).
 */
export async function watchJob(events: AsyncIterable<WireJobEvent>, out: { write(s: string): void; isTTY?: boolean }): Promise<string | undefined> {
  let barOpen = false;
  let final: string | undefined;
  for await (const e of events) {
    const line = renderEvent(e);
    const bar = out.isTTY === true && e.type === 'progress' && progressFraction(e.data) !== null;
    if (bar) {
      out.write(`\r\u001b[2K${line}`);
      barOpen = true;
      continue;
    }
    if (barOpen) out.write('\n');
    barOpen = false;
    out.write(`${line}\n`);
    const state = e.type === 'state' ? (e.data as { state?: string }).state : undefined;
    if (state === 'succeeded' || state === 'failed' || state === 'cancelled') final = state;
  }
  if (barOpen) out.write('\n');
  return final;
}
