import { describe, expect, it } from 'vitest';
import type { WireJobEvent } from '@pgdispatch/client/events';
import { progressBar, progressFraction, renderEvent, watchJob } from './watch.js';

const ev = (id: number, type: WireJobEvent['type'], data: unknown): WireJobEvent => ({ id, jobId: 7, queue: 'q', type, data, createdAt: '2026-01-01T10:00:00.123Z' });
async function* from(events: WireJobEvent[]) {
  yield* events;
}

describe('jobs watch rendering', () => {
  it('draws a bar only for { current, total } with a positive total', () => {
    expect(progressFraction({ current: 3, total: 4 })).toEqual({ current: 3, total: 4 });
    for (const bad of [null, 5, { current: 1 }, { current: 1, total: 0 }, { current: '1', total: 2 }, { current: 1, total: Infinity }]) expect(progressFraction(bad)).toBeNull();
    expect(progressBar(1, 4, 8)).toBe('[██░░░░░░]  25% 1/4');
    expect(progressBar(9, 4, 4)).toBe('[████] 100% 9/4');
  });

  it('renders state changes with attempt, error and next run; other progress as JSON', () => {
    expect(renderEvent(ev(1, 'state', { state: 'running', attempt: 2 }))).toBe('10:00:00.123 running (attempt 2)');
    expect(renderEvent(ev(2, 'state', { state: 'retry_waiting', attempt: 1, error: { message: 'boom' }, runAt: 'T' }))).toBe('10:00:00.123 retry_waiting (attempt 1): boom, next attempt at T');
    expect(renderEvent(ev(3, 'progress', { stage: 'x' }))).toBe('10:00:00.123 progress {"stage":"x"}');
    expect(renderEvent(ev(4, 'cancel_requested', { state: 'running', attempt: 1 }))).toBe('10:00:00.123 cancel requested');
  });

  it('redraws bars on one terminal line, prints one line per event when piped, and reports the final state', async () => {
    const events = [ev(1, 'state', { state: 'running', attempt: 1 }), ev(2, 'progress', { current: 1, total: 2 }), ev(3, 'progress', { current: 2, total: 2 }), ev(4, 'state', { state: 'succeeded', attempt: 1 })];
    let tty = '';
    expect(await watchJob(from(events), { write: (s) => (tty += s), isTTY: true })).toBe('succeeded');
    expect(tty.split('\n')).toEqual(['10:00:00.123 running (attempt 1)', expect.stringMatching(/^\r.*50% 1\/2\r.*100% 2\/2$/), '10:00:00.123 succeeded (attempt 1)', '']);
    let piped = '';
    await watchJob(from(events), { write: (s) => (piped += s) });
    expect(piped.trim().split('\n')).toHaveLength(4);
  });
});
