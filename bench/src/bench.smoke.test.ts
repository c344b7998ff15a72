import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, inject, test } from 'vitest';
import { parseOptions } from './lib/options.js';
import { renderReport } from './lib/report.js';
import { checkTargets } from './lib/targets.js';
import type { Cell } from './lib/results.js';
import { runBench } from './lib/runner.js';

/**
 * The bench's own smoke run (SMOKE=1: N=500, one round, throughput profiles only, a limited queue
 * at L=2 for 2 s, a 2,000-job soak) through the real code path — fresh databases, spawned worker
 * and server processes, the peers — against the test PostgreSQL, so the harness cannot rot.
 * Numbers must be positive and every job done.
 */
test('a smoke run measures every system and every job completes', async () => {
  const outDir = await mkdtemp(path.join(tmpdir(), 'pgdispatch-bench-smoke-'));
  try {
    const opts = parseOptions({ SMOKE: '1', QUIET: '1', BENCH_DATABASE_URL: inject('pgAdminUrl'), OUT_DIR: outDir });
    const results = await runBench(opts);
    results.targets = checkTargets(results);
    const cells: [string, Cell][] = [
      ...Object.entries(results.enqueue),
      ...Object.entries(results.processing),
      ...Object.entries(results.latency),
      ...Object.entries(results.pullers.batch),
      ...Object.entries(results.pullers.direct),
      ...Object.entries(results.limited ?? {}),
      ...(results.soak ? [['soak', results.soak] as [string, Cell]] : []),
    ];
    const failed = cells.filter(([, c]) => c.errors.length > 0).map(([id, c]) => `${id}: ${c.errors.join('; ')}`);
    expect(failed).toEqual([]);

    const enqueue = Object.values(results.enqueue).filter((c) => !c.pending);
    expect(enqueue.length).toBeGreaterThanOrEqual(3);
    for (const c of enqueue) {
      expect(c.single[0]).toBeGreaterThan(0);
      expect(c.bulk[0]).toBeGreaterThan(0);
    }
    const processing = Object.values(results.processing).filter((c) => !c.pending);
    expect(processing.map((c) => c.system)).toEqual(expect.arrayContaining(['pgdispatch', 'graphile-worker', 'pg-boss']));
    for (const c of processing) {
      expect(c.rate[0]).toBeGreaterThan(0);
      expect(c.succeeded[0]).toBe(opts.n);
      for (const rss of Object.values(c.rss)) expect(rss[0]).toBeGreaterThan(0);
    }
    for (const c of Object.values(results.latency).filter((c) => !c.pending)) {
      expect(c.p50[0]).toBeGreaterThan(0);
      expect(c.p99[0]).toBeGreaterThanOrEqual(c.p50[0] as number);
    }
    for (const mode of ['batch', 'direct'] as const) {
      for (const c of Object.values(results.pullers[mode]).filter((c) => !c.pending)) {
        expect(c.runs[0]?.claimed).toBeGreaterThan(0);
        expect(c.runs[0]?.rowsScannedPerJob).toBeGreaterThan(0);
      }
    }
    const limited = Object.values(results.limited ?? {}).filter((c) => !c.pending);
    expect(limited.map((c) => [c.system, c.limit])).toEqual(expect.arrayContaining([['pgdispatch', 2], ['graphile-worker', 1]]));
    for (const c of limited) {
      expect(c.rate[0]).toBeGreaterThan(0);
      expect(c.maxConcurrent[0]).toBeGreaterThan(0);
      expect(c.maxConcurrent[0]).toBeLessThanOrEqual(c.limit);
    }
    const soak = results.soak?.runs[0];
    expect(soak?.note).toBeUndefined();
    expect([soak?.offered, soak?.completed]).toEqual([opts.soakN, opts.soakN]);
    expect(soak?.parts).toHaveLength(10);
    expect(soak?.parts.reduce((a, p) => a + p.sampled, 0)).toBeGreaterThan(0);
    expect(soak?.sizeFirst).toBeGreaterThan(0);
    expect(soak?.sizeEnd).toBeGreaterThanOrEqual(soak?.sizeFirst as number);
    const report = renderReport(results);
    expect(report).toContain('Targets');
    expect(report).toContain('Limited queue');
    expect(report).toContain('after the first 10%');
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}, 180_000);
