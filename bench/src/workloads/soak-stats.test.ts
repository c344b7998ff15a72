import { expect, test } from 'vitest';
import { jobsDue, sampleEvery, soakParts, soakVerdict, tickMs, timeToReach, type ProgressSample } from './soak-stats.js';

test('the schedule offers jobs at the steady rate, never ahead of it and never past n', () => {
  expect(jobsDue(0, 8000, 2_000_000)).toBe(0);
  expect(jobsDue(50, 8000, 2_000_000)).toBe(400);
  expect(jobsDue(1000, 8000, 2_000_000)).toBe(8000);
  expect(jobsDue(1_000_000, 8000, 2_000_000)).toBe(2_000_000);
  // Offering on a 50 ms timer: each tick's chunk is the increment, 400 jobs at 8,000 jobs/s.
  const tick = tickMs(2_000_000, 8000);
  expect(tick).toBe(50);
  const chunks = [1, 2, 3, 4].map((k) => jobsDue(k * tick, 8000, 2_000_000) - jobsDue((k - 1) * tick, 8000, 2_000_000));
  expect(chunks).toEqual([400, 400, 400, 400]);
  // A smoke-size run is still spread over at least 20 ticks.
  expect((2000 / 2000) * 1000 / tickMs(2000, 2000)).toBeGreaterThanOrEqual(20);
  expect(sampleEvery(2_000_000)).toBe(1000);
  expect(sampleEvery(500)).toBe(1);
});

test('the time a completion count is reached is interpolated between samples', () => {
  const samples: ProgressSample[] = [
    { t: 100, completed: 100, backlog: 5 },
    { t: 200, completed: 300, backlog: 5 },
  ];
  expect(timeToReach(samples, 50)).toBe(50);
  expect(timeToReach(samples, 200)).toBe(150);
  expect(timeToReach(samples, 301)).toBeUndefined();
});

test('parts split the run by completions; a slower last part shows as a throughput ratio below 1', () => {
  // 1,000 jobs: 100 per 100 ms for the first 900, then the last 100 take 200 ms.
  const samples: ProgressSample[] = [];
  for (let k = 1; k <= 9; k++) samples.push({ t: k * 100, completed: k * 100, backlog: 10, jobsBytes: k * 1000 });
  samples.push({ t: 1100, completed: 1000, backlog: 40, jobsBytes: 20_000 });
  // Pickup: 10 ms, except 50 ms in the middle part and 30 ms in the last.
  const pickups = Array.from({ length: 1000 }, (_, i) => ({ i, ms: i >= 900 ? 30 : i >= 500 && i < 600 ? 50 : 10, afterAckMs: 4 }));
  const parts = soakParts(samples, pickups, 1000);
  expect(parts).toHaveLength(10);
  expect(parts[0]?.rate).toBeCloseTo(1000);
  expect(parts[9]?.rate).toBeCloseTo(500);
  expect(parts[0]?.pickupP99).toBe(10);
  expect(parts[9]?.pickupP99).toBe(30);
  expect(parts[9]?.sampled).toBe(100);
  expect(parts[9]?.afterAckP50).toBe(4);
  expect(parts[9]?.backlogMax).toBe(40);
  expect(parts[9]?.jobsBytes).toBe(20_000);
  const v = soakVerdict(parts, 1000, 2500);
  expect(v.throughput).toBeCloseTo(0.5);
  expect(v.pickupP99).toBe(5); // the worst part, not just the last, is what "stable" is held to
  expect(v.size).toBe(2.5);
});

test('a run that never finished its last part reports the parts it did finish', () => {
  const samples: ProgressSample[] = [{ t: 100, completed: 150, backlog: 0 }];
  const parts = soakParts(samples, [], 1000);
  expect(parts.map((p) => p.to)).toEqual([100, 200]);
  expect(parts[1]?.rate).toBeNaN();
});
