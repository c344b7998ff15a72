import type { PullerResult } from '../workloads/pullers.js';
import type { SoakResult } from '../workloads/soak.js';
import type { StatementSummary } from './pgss.js';

/** Per-round values of one figure; the report shows their median. */
export type Series = number[];

export interface Cell {
  /** Why it did not run (e.g. pending: server not built). */
  pending?: string;
  errors: string[];
}

export interface EnqueueCell extends Cell {
  system: string;
  single: Series;
  bulk: Series;
}

export interface ProcessingCell extends Cell {
  system: string;
  kind: string;
  settings: string;
  rate: Series;
  seconds: Series;
  /** Peak RSS in bytes per process role, per round. */
  rss: Record<string, Series>;
  /** CPU µs (user + system) per job per process role, per round (absent in results before it). */
  cpuUsPerJob?: Record<string, Series>;
  /** Jobs the database shows succeeded, per round (must equal N). */
  succeeded: Series;
  /** pg_stat_statements per round (when loaded). */
  statements: StatementSummary[];
}

export interface LatencyCell extends Cell {
  system: string;
  kind: string;
  p50: Series;
  p95: Series;
  p99: Series;
  max: Series;
  ackP50: Series;
  afterAckP50: Series;
}

export interface BacklogCell extends Cell {
  small: Series;
  large: Series;
}

export interface PullerCell extends Cell {
  runs: PullerResult[];
}

export interface LimitedCell extends Cell {
  system: string;
  /** The queue's concurrency limit L. */
  limit: number;
  /** Handler length, ms. */
  jobMs: number;
  /** Steady jobs/s (handler starts after the first L over first → last start), per round. */
  rate: Series;
  /** Jobs completed in the window per the database, over the window's seconds, per round. */
  windowRate: Series;
  /** Most handlers seen running at once, per round (≤ limit, or the limit was not held). */
  maxConcurrent: Series;
  /** Handler end → next start in the freed slot, p50 ms, per round (absent in older results). */
  refillGapP50?: Series;
}

export interface SoakCell extends Cell {
  profile: string;
  /** The maximum the offered rate is a fraction of, jobs/s, and where it came from. */
  maxRate: number;
  maxSource: string;
  fraction: number;
  retentionSeconds: number;
  runs: SoakResult[];
}

export interface BenchResults {
  meta: {
    startedAt: string;
    finishedAt?: string;
    command: string;
    options: Record<string, unknown>;
    machine: { nproc: number; cpu: string; memGiB: number; node: string; os: string; loadavgStart: number[]; loadavgEnd?: number[] };
    postgres: { kind: string; version: string; pgss: boolean; pgssReason?: string; settings: Record<string, string> };
    versions: Record<string, string>;
  };
  enqueue: Record<string, EnqueueCell>;
  processing: Record<string, ProcessingCell>;
  latency: Record<string, LatencyCell>;
  backlog: Record<string, BacklogCell>;
  /** mode → puller count → per-round results. */
  pullers: Record<'batch' | 'direct', Record<string, PullerCell>>;
  pgbench: Cell & { tool?: string; insert: Series; update: Series };
  /** Limited-queue runs by `<system profile>, limit L` (absent in results saved before the workload existed). */
  limited?: Record<string, LimitedCell>;
  /** The soak, run once (round 1) when ONLY names it. */
  soak?: SoakCell;
  /** Filled by the report. */
  targets?: TargetCheck[];
}

export interface TargetCheck {
  figure: string;
  goal: string;
  measured: string;
  /** true met, false not met, null not measured. */
  met: boolean | null;
}

export function emptyResults(meta: BenchResults['meta']): BenchResults {
  return { meta, enqueue: {}, processing: {}, latency: {}, backlog: {}, pullers: { batch: {}, direct: {} }, pgbench: { errors: [], insert: [], update: [] }, limited: {} };
}
