import { expect, test } from 'vitest';
import { idealRate, limitedJobs, maxOverlap, refillGapP50, steadyRate } from './limited.js';

test('the ideal of a limited queue is L handlers busy all the time', () => {
  expect(idealRate(8, 50)).toBe(160);
  // Enough jobs that a dispatcher 1.5× the ideal does not run dry in the window.
  expect(limitedJobs({ limit: 8, seconds: 5, jobMs: 50, concurrency: 16 })).toBe(1208);
});

test('handler overlap counts the most 50 ms handlers running at once', () => {
  expect(maxOverlap([0, 50, 100], 50)).toBe(1); // back to back: never two at once
  expect(maxOverlap([0, 10, 20, 60], 50)).toBe(3);
  expect(maxOverlap([], 50)).toBe(0);
});

test('the steady rate counts starts after the first L over the first-to-last span', () => {
  // L = 2, refilled every 50 ms: 2 per 50 ms = 40 jobs/s.
  const ideal = [0, 0, 50, 50, 100, 100, 150, 150];
  expect(steadyRate(ideal, 2)).toBeCloseTo(40);
  // Refilled only on a 1 s poll: 2 jobs/s.
  expect(steadyRate([0, 0, 1000, 1000, 2000, 2000], 2)).toBeCloseTo(2);
  expect(steadyRate([0, 0], 2)).toBeNaN();
});

test('the refill gap is the time from a handler end to the next start in its slot', () => {
  // L = 2, 50 ms jobs, each slot refilled 8 ms after its job ended.
  const starts = [0, 1, 58, 59, 116, 117, 174, 175];
  expect(refillGapP50(starts, 2, 50)).toBe(8);
  expect(refillGapP50([0, 0, 1050, 1050], 2, 50)).toBe(1000); // a 1 s poll
  expect(refillGapP50([0], 1, 50)).toBeNaN();
});
