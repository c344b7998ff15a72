import { expect, test } from 'vitest';
import { parseOptions } from './options.js';

test('the soak is off by default and runs when ONLY names it', () => {
  expect(parseOptions({}).only).not.toContain('soak');
  expect(parseOptions({}).only).toContain('limited');
  const o = parseOptions({ ONLY: 'soak', SOAK_N: '100_000', SOAK_RATE_FRACTION: '0.5', SOAK_MAX_SECONDS: '120' });
  expect(o.only).toEqual(['soak']);
  expect([o.soakN, o.soakRateFraction, o.soakMaxSeconds]).toEqual([100_000, 0.5, 120]);
  expect(parseOptions({}).soakN).toBe(2_000_000);
});

test('bad soak and limited knobs are refused with the variable named', () => {
  expect(() => parseOptions({ SOAK_RATE_FRACTION: '1.5' })).toThrow(/SOAK_RATE_FRACTION/);
  expect(() => parseOptions({ SOAK_N: 'lots' })).toThrow(/SOAK_N/);
  expect(() => parseOptions({ LIMITED_LIMITS: '2,x' })).toThrow(/LIMITED_LIMITS/);
  expect(parseOptions({ LIMITED_LIMITS: '2,8' }).limitedLimits).toEqual([2, 8]);
});
