/**
 * `npm run chaos`: the full chaos run (10,000 jobs, three workers killed and restarted at random,
 * one api killed mid batch-pull, PostgreSQL stopped for 10 s, a stalled worker, fuzzing of the
 * live api), then the fuzz suite with up to 20,000 requests per property (2 minutes at most each). Bounded: it stops by itself and prints
 * a summary; exit code 1 when a guarantee broke. Sizes: CHAOS_JOBS, CHAOS_WORKER_KILLS,
 * CHAOS_PG_STOP_MS, CHAOS_FUZZ, CHAOS_LEASE_MS.
 */
import { formatSummary } from './analyse.js';
import { runChaos } from './chaos.js';

const num = (name: string, def: number) => Number(process.env[name] ?? def);
const leaseMs = num('CHAOS_LEASE_MS', 3_000);
const t0 = Date.now();
const summary = await runChaos({
  jobs: num('CHAOS_JOBS', 10_000),
  produceMs: num('CHAOS_PRODUCE_MS', 60_000),
  workers: 3,
  workerKills: num('CHAOS_WORKER_KILLS', 15),
  apiKills: 1,
  pgStopMs: num('CHAOS_PG_STOP_MS', 10_000),
  fuzzRequests: num('CHAOS_FUZZ', 5_000),
  leaseMs,
  timeoutMs: num('CHAOS_TIMEOUT_MS', 600_000),
  log: (line) => console.log(`[chaos +${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}`),
});
console.log('\n=== pgdispatch chaos summary ===');
console.log(formatSummary(summary, leaseMs));
console.log(`\n${JSON.stringify(summary)}`);
const broken =
  summary.lost > 0 || summary.completedTwice > 0 || summary.ranTwiceAtOnce > 0 || summary.fiveXX > 0 || summary.fuzzProblems > 0 || summary.crashed > 0 ||
  summary.limitedQueue.maxConcurrent > summary.limitedQueue.limit || !summary.stall?.lateResultRefused;
process.exit(broken ? 1 : 0);
