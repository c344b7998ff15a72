/**
 * Bench options, from the environment or `--key=value` arguments (arguments win). Every option has
 * a default; SMOKE=1 shrinks the run to a fast subset (N=500, one round) that the test suite runs.
 * The soak is off by default (ONLY=soak): it runs for minutes.
 */
export const WORKLOADS = ['enqueue', 'processing', 'latency', 'backlog', 'pullers', 'pgbench', 'limited', 'soak'] as const;
export type Workload = (typeof WORKLOADS)[number];
/** Run only when named in ONLY: the soak takes minutes (up to SOAK_MAX_SECONDS). */
export const OFF_BY_DEFAULT: readonly Workload[] = ['soak'];

export interface BenchOptions {
  /** Jobs per processing run (default 20000; 500 in smoke). */
  n: number;
  /** Interleaved rounds; figures are the median (default 3; 1 in smoke). */
  rounds: number;
  smoke: boolean;
  /** Single awaited enqueues per run (default min(N, 5000)). */
  singleN: number;
  /** Jobs per bulk chunk (default 1000). */
  bulkChunk: number;
  /** Handlers per worker (default 16). */
  concurrency: number;
  /** Pickup latency: jobs and spacing (default 200 every 20 ms). */
  latencyJobs: number;
  latencyIntervalMs: number;
  /** Backlog scaling: small and large backlog, and how many completions are timed (default 10k / 1M / 10k). */
  backlogSmall: number;
  backlogLarge: number;
  /** Puller counts (default 1,4,16,64,128), batch asked per pull (default 4), seconds per point (default 3). */
  pullers: number[];
  pullerBatch: number;
  pullerSeconds: number;
  /** Waiting jobs behind the puller points (default 200000). */
  pullerBacklog: number;
  pgbenchSeconds: number;
  pgbenchClients: number;
  /** Limited queue: concurrency limits measured (default 1,2,8; smoke 2), window seconds (default 5; smoke 2), job length ms (default 50). */
  limitedLimits: number[];
  limitedSeconds: number;
  limitedJobMs: number;
  /** Soak: jobs offered (default 2,000,000; smoke 2,000), offered rate as a fraction of the measured maximum (default 0.8). */
  soakN: number;
  soakRateFraction: number;
  /** Soak: a fixed offered rate in jobs/s instead of measuring the maximum (default 0 = measure). */
  soakRate: number;
  /** Soak: jobs of the short processing run that measures the maximum when processing did not run (default 20000; smoke 500). */
  soakCalibrateN: number;
  /** Soak: the whole workload's time budget in seconds, calibration and drain included (default 900; smoke 60). */
  soakMaxSeconds: number;
  /** Soak: RETENTION_SECONDS (and EVENT_RETENTION_SECONDS) of the server (default 30). */
  soakRetentionSeconds: number;
  /** Workloads to run (default all but the soak). */
  only: Workload[];
  /** Substrings of profile ids to run (default all). */
  systems: string[];
  /** PostgreSQL server to use; unset = an embedded server in a temp dir. */
  databaseUrl: string | undefined;
  /** Where the JSON goes (default bench/results). */
  outDir: string;
  /** Print progress lines (default true). */
  verbose: boolean;
}

function readArgs(argv: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of argv) {
    const m = /^--([a-zA-Z-_]+)(?:=(.*))?$/.exec(a);
    if (m?.[1]) out[m[1].toUpperCase().replace(/-/g, '_')] = m[2] ?? '1';
  }
  return out;
}

function int(v: string | undefined, def: number, name: string): number {
  if (v === undefined || v === '') return def;
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

function fraction(v: string | undefined, def: number, name: string): number {
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 1) throw new Error(`${name} must be a number in (0, 1], got ${JSON.stringify(v)}`);
  return n;
}

function list(v: string | undefined): string[] {
  return (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

/** Resolves options from an environment and argument list (process.env/argv in run.ts, explicit in tests). */
export function parseOptions(env: Record<string, string | undefined>, argv: readonly string[] = [], overrides: Partial<BenchOptions> = {}): BenchOptions {
  const e = { ...env, ...readArgs(argv) };
  const smoke = e.SMOKE === '1' || e.SMOKE === 'true';
  const n = int(e.N, smoke ? 500 : 20_000, 'N');
  const only = list(e.ONLY);
  for (const w of only) if (!WORKLOADS.includes(w as Workload)) throw new Error(`ONLY: unknown workload ${w} (${WORKLOADS.join(', ')})`);
  const pullers = list(e.PULLERS).map((p) => int(p, 1, 'PULLERS'));
  const limits = list(e.LIMITED_LIMITS).map((l) => Math.max(1, int(l, 1, 'LIMITED_LIMITS')));
  const opts: BenchOptions = {
    n,
    // The soak runs once per run: a soak-only run has one round unless ROUNDS says otherwise.
    rounds: Math.max(1, int(e.ROUNDS, smoke || (only.length === 1 && only[0] === 'soak') ? 1 : 3, 'ROUNDS')),
    smoke,
    singleN: int(e.SINGLE_N, Math.min(n, smoke ? 50 : 5000), 'SINGLE_N'),
    bulkChunk: Math.max(1, int(e.BULK_CHUNK, 1000, 'BULK_CHUNK')),
    concurrency: Math.max(1, int(e.CONCURRENCY, 16, 'CONCURRENCY')),
    latencyJobs: int(e.LATENCY_JOBS, smoke ? 10 : 200, 'LATENCY_JOBS'),
    latencyIntervalMs: int(e.LATENCY_INTERVAL_MS, 20, 'LATENCY_INTERVAL_MS'),
    backlogSmall: int(e.BACKLOG_SMALL, smoke ? 500 : 10_000, 'BACKLOG_SMALL'),
    backlogLarge: int(e.BACKLOG_LARGE, smoke ? 5_000 : 1_000_000, 'BACKLOG_LARGE'),
    pullers: pullers.length > 0 ? pullers : smoke ? [4] : [1, 4, 16, 64, 128],
    pullerBatch: Math.max(1, int(e.PULLER_BATCH, 4, 'PULLER_BATCH')),
    pullerSeconds: Math.max(1, int(e.PULLER_SECONDS, smoke ? 1 : 3, 'PULLER_SECONDS')),
    pullerBacklog: int(e.PULLER_BACKLOG, smoke ? 5_000 : 200_000, 'PULLER_BACKLOG'),
    pgbenchSeconds: Math.max(1, int(e.PGBENCH_SECONDS, smoke ? 1 : 5, 'PGBENCH_SECONDS')),
    pgbenchClients: Math.max(1, int(e.PGBENCH_CLIENTS, 16, 'PGBENCH_CLIENTS')),
    limitedLimits: limits.length > 0 ? limits : smoke ? [2] : [1, 2, 8],
    limitedSeconds: Math.max(1, int(e.LIMITED_SECONDS, smoke ? 2 : 5, 'LIMITED_SECONDS')),
    limitedJobMs: Math.max(1, int(e.LIMITED_JOB_MS, 50, 'LIMITED_JOB_MS')),
    soakN: Math.max(10, int(e.SOAK_N, smoke ? 2_000 : 2_000_000, 'SOAK_N')),
    soakRateFraction: fraction(e.SOAK_RATE_FRACTION, 0.8, 'SOAK_RATE_FRACTION'),
    soakRate: int(e.SOAK_RATE, 0, 'SOAK_RATE'),
    soakCalibrateN: Math.max(100, int(e.SOAK_CALIBRATE_N, smoke ? 500 : 20_000, 'SOAK_CALIBRATE_N')),
    soakMaxSeconds: Math.max(10, int(e.SOAK_MAX_SECONDS, smoke ? 60 : 900, 'SOAK_MAX_SECONDS')),
    soakRetentionSeconds: int(e.SOAK_RETENTION_SECONDS, 30, 'SOAK_RETENTION_SECONDS'),
    only: only.length > 0 ? (only as Workload[]) : smoke ? ['enqueue', 'processing', 'latency', 'pullers', 'limited', 'soak'] : WORKLOADS.filter((w) => !OFF_BY_DEFAULT.includes(w)),
    systems: list(e.SYSTEMS),
    databaseUrl: e.BENCH_DATABASE_URL || undefined,
    outDir: e.OUT_DIR || new URL('../../results', import.meta.url).pathname,
    verbose: e.QUIET !== '1',
  };
  return { ...opts, ...overrides };
}
