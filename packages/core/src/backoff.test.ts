import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF, backoffCeilingMs, backoffDelayMs } from './backoff.js';

const policy = { baseMs: 100, maxMs: 10_000 };

describe('backoffCeilingMs', () => {
  it('doubles from baseMs with each attempt', () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffCeilingMs(a, policy))).toEqual([100, 200, 400, 800, 1600]);
  });

  it('is capped at maxMs', () => {
    expect(backoffCeilingMs(8, policy)).toBe(10_000);
    expect(backoffCeilingMs(1_000_000, policy)).toBe(10_000);
  });

  it('treats attempts below 1 as the first attempt', () => {
    expect(backoffCeilingMs(0, policy)).toBe(100);
    expect(backoffCeilingMs(-3, policy)).toBe(100);
  });

  it('defaults to 1 s base, 1 h cap', () => {
    expect(DEFAULT_BACKOFF).toEqual({ baseMs: 1_000, maxMs: 3_600_000 });
    expect(backoffCeilingMs(1)).toBe(1_000);
    expect(backoffCeilingMs(50)).toBe(3_600_000);
  });

  it('stays finite for huge attempts with a huge cap', () => {
    expect(Number.isFinite(backoffCeilingMs(10_000, { baseMs: 1_000, maxMs: Number.MAX_SAFE_INTEGER }))).toBe(true);
  });
});

describe('backoffDelayMs (full jitter)', () => {
  it('is 0 when random() is 0', () => {
    expect(backoffDelayMs(5, policy, () => 0)).toBe(0);
  });

  it('stays below the ceiling as random() approaches 1', () => {
    expect(backoffDelayMs(3, policy, () => 0.999_999)).toBe(399);
    expect(backoffDelayMs(30, policy, () => 0.999_999)).toBe(9_999);
  });

  it('scales the ceiling by random()', () => {
    expect(backoffDelayMs(4, policy, () => 0.5)).toBe(400);
    expect(backoffDelayMs(1, policy, () => 0.25)).toBe(25);
  });

  it('always lands in [0, ceiling) for many draws', () => {
    let seed = 42;
    const lcg = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    for (let attempt = 1; attempt <= 20; attempt++) {
      const ceiling = backoffCeilingMs(attempt, policy);
      for (let i = 0; i < 200; i++) {
        const d = backoffDelayMs(attempt, policy, lcg);
        expect(Number.isInteger(d)).toBe(true);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(ceiling);
      }
    }
  });

  it('a zero base never waits', () => {
    expect(backoffDelayMs(10, { baseMs: 0, maxMs: 1000 }, () => 0.9)).toBe(0);
  });
});
