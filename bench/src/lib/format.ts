import type { Cell, Series } from './results.js';
import { median, spread } from './stats.js';

/** Number formatting and plain-text tables shared by the report modules. */

export const fmtInt = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
export const fmt1 = (v: number) => (Number.isFinite(v) ? v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2) : 'n/a');
export const fmtX = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '');
export const mb = (bytes: number) => (Number.isFinite(bytes) ? `${Math.round(bytes / 2 ** 20)} MB` : 'n/a');

export function range(s: Series, f: (v: number) => string): string {
  if (s.length < 2) return '';
  const { min, max } = spread(s);
  return `[${f(min)}–${f(max)}]`;
}

/** Why a cell has no numbers: pending, an error, or nothing. */
export function status(c: Cell | undefined): string | undefined {
  if (!c) return 'not run';
  if (c.pending) return c.pending;
  if (c.errors.length > 0) return `error: ${c.errors[0]?.split('\n')[0]}`;
  return undefined;
}

export function table(headers: string[], rows: string[][], align: ('l' | 'r')[] = []): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => ((align[i] ?? (i === 0 ? 'l' : 'r')) === 'l' ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Best median among the cells of the given systems (peers), by `pick`; NaN when none ran. */
export function bestPeer<T extends Cell & { system: string }>(cells: Record<string, T>, pick: (c: T) => Series, higherIsBetter = true): { id: string; value: number } {
  let best = { id: '', value: Number.NaN };
  for (const [id, c] of Object.entries(cells)) {
    if (c.system === 'pgdispatch') continue;
    const v = median(pick(c));
    if (!Number.isFinite(v)) continue;
    if (!Number.isFinite(best.value) || (higherIsBetter ? v > best.value : v < best.value)) best = { id, value: v };
  }
  return best;
}

export const m = (s: Series | undefined) => median(s ?? []);

