import { describe, expect, it } from 'vitest';
import { formatSummary } from './analyse.js';
import { runChaos } from './chaos.js';

// The bounded chaos run of `npm test`: a few hundred jobs through two api processes and three
// worker processes (the built CLI), one SIGKILL of a worker and of an api, PostgreSQL stopped
// for 2 s, a stalled worker, and a short fuzz of the live api. `npm run chaos` is the full one.
const LEASE_MS = 2_000;

describe('chaos, bounded', () => {
  it('loses no job, completes none twice, runs none twice at once, keeps the limit, refuses the late result', async () => {
    const s = await runChaos({ jobs: 400, produceMs: 8_000, workers: 3, workerKills: 1, apiKills: 1, pgStopMs: 2_000, fuzzRequests: 200, leaseMs: LEASE_MS, timeoutMs: 90_000, log: (l) => console.log(`[chaos] ${l}`) });
    console.log(formatSummary(s, LEASE_MS));
    expect(s.enqueued).toBe(400);
    expect({ lost: s.lost, completedTwice: s.completedTwice, ranTwiceAtOnce: s.ranTwiceAtOnce, fiveXX: s.fiveXX, fuzzProblems: s.fuzzProblems }).toEqual({ lost: 0, completedTwice: 0, ranTwiceAtOnce: 0, fiveXX: 0, fuzzProblems: 0 });
    // Not asserted: `s.crashed`. About one bounded run in five, an api process dies during the
    // PostgreSQL stop from a postgres.js 3.4.9 defect (a buffered write on a socket that closed:
    // "TypeError: Cannot read properties of null (reading 'write')" in connection.js nextWrite;
    // upstream porsager/postgres#1154, #1208, fixes unreleased). The harness restarts it as a
    // supervisor would and every guarantee above is still checked; docs/reliability.md and
    // `npm run chaos` (which fails on it) report it.
    expect(s.completed).toBe(400);
    expect(s.limitedQueue.jobs).toBeGreaterThan(0);
    expect(s.limitedQueue.maxConcurrent).toBeLessThanOrEqual(s.limitedQueue.limit);
    expect(s.processesKilled).toEqual({ workers: 1, apis: 1 });
    expect(s.postgresStops).toBe(1);
    expect(s.stall).toMatchObject({ lateResultWritten: true, lateResultRefused: true });
    expect(s.requestsFuzzed).toBeGreaterThanOrEqual(200);
    // The killed worker held jobs (so their recovery was exercised), and they finished within
    // lease + 1 s (the goal) plus slack for a loaded machine.
    // (On a loaded machine the kill may find every worker idle for its 2 s search; then it has no
    // jobs to time, and the api kill's re-runs still exercise recovery: maxExecutions > 1.)
    const workerKill = s.killToFinishedMs.find((x) => x.kind === 'worker')!;
    if (workerKill.jobs > 0) expect(workerKill.ms).toBeLessThan(LEASE_MS + 4_000);
    expect(s.maxExecutions).toBeGreaterThan(1);
  }, 240_000);
});
