import type { BenchDb, PgTarget } from '../lib/pg-target.js';
import type { Child } from '../lib/proc.js';
import type { BenchPayload } from '../workers/child.js';

export type SystemName = 'pgdispatch' | 'graphile-worker' | 'pg-boss';

/** Shared by every system module: where the bench runs and how to log. */
export interface BenchContext {
  target: PgTarget;
  log: (line: string) => void;
  /** Extra node flags for spawned worker/server processes (PROFILE=1 adds --cpu-prof). */
  nodeArgs: string[];
  /** Where CPU profiles go when profiling. */
  profileDir?: string;
}

/** A way to put jobs in a queue: one awaited commit per `single`, one statement/request per `bulk`. */
export interface Enqueuer {
  /** Runs for every fresh database before timing starts (schema, queue, connections). */
  single(payload: BenchPayload): Promise<void>;
  bulk(payloads: BenchPayload[]): Promise<void>;
  close(): Promise<void>;
}

export interface EnqueueTarget {
  id: string;
  system: SystemName;
  /** Why it cannot run yet (e.g. the server is not built), or undefined. */
  pending(): string | undefined;
  /** Installs the system's schema in `db` (not timed). */
  install(ctx: BenchContext, db: BenchDb): Promise<void>;
  open(ctx: BenchContext, db: BenchDb): Promise<Enqueuer>;
}

/** A worker that is started, warmed and idle; `go()` opens the measured window. */
export interface RunningWorker {
  /** Processes to sample peak RSS from, by role (e.g. api, worker, all). */
  processes: { role: string; child: Child }[];
  /** The process that runs handlers (its marks and clock). */
  executor: Child;
  go(): Promise<void>;
  stop(): Promise<void>;
}

export type ProfileKind = 'throughput' | 'bounded' | 'split' | 'reference';

/** One way of running a system's workers (pgdispatch mode, or a peer's settings profile). */
export interface WorkerProfile {
  id: string;
  system: SystemName;
  kind: ProfileKind;
  /** One line on the settings, for the report. */
  settings: string;
  pending(): string | undefined;
  install(ctx: BenchContext, db: BenchDb): Promise<void>;
  /** Enqueuer used to fill backlogs and for latency probes. */
  enqueuer(ctx: BenchContext, db: BenchDb): Promise<Enqueuer>;
  /** Starts the worker process(es) against `db`, ready but not yet working. */
  start(ctx: BenchContext, db: BenchDb, opts: { concurrency: number }): Promise<RunningWorker>;
  /** Jobs not yet finished (waiting or running). */
  remaining(db: BenchDb): Promise<number>;
  /** Jobs finished successfully (for systems that delete finished jobs: N minus remaining and failed). */
  succeeded(db: BenchDb, total: number): Promise<number>;
}

export const QUEUE = 'bench';
/**
 * The column alias of every system's completion watcher query (`… as bench_watcher`): pg_stat_statements
 * keeps aliases (it strips comments), so its summaries can leave the bench's own polling out (lib/pgss.ts).
 */
export const WATCHER = 'bench_watcher';
export const TASK = 'bench';
