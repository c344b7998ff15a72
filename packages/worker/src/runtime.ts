/**
 * The worker runtime: pulls jobs through a Transport (in-process in role all, HTTP in role
 * worker), runs their handlers with bounded concurrency, keeps their leases alive with batched
 * heartbeats, reports outcomes and shuts down gracefully.
 *
 * Pull model: one dequeue long-poll at a time asks for the free handler slots plus the prefetch
 * allowance (`prefetch`, default 0). With prefetch 0 the control plane claims only what this
 * process can start at once; with prefetch > 0 claimed jobs wait in a local buffer, heartbeated,
 * until a slot frees. The parts: held-job.ts (a held job's state and its transitions),
 * job-runner.ts (one handler run to a verdict), outcome-delivery.ts (reports and releases),
 * heartbeat.ts (the batched lease heartbeat).
 */
import { backoffDelayMs, type BackoffPolicy } from '@pgdispatch/core/backoff';
import { LIMITS } from '@pgdispatch/core/internal-api';
import { silentLogger, type Logger } from '@pgdispatch/core/log';
import type { Transport } from '@pgdispatch/core/transport';
import type { ClaimedJob } from '@pgdispatch/core/types';
import { WorkerShutdownError } from './errors.js';
import { Heartbeat } from './heartbeat.js';
import { ApiConnectionTracker, type ApiConnection } from './api-connection.js';
import { HeldJob, type JobOutcome } from './held-job.js';
import { runJob, type RunnerDeps, type Verdict } from './job-runner.js';
import { OutcomeDelivery } from './outcome-delivery.js';
import { TaskRegistry, type TaskDefinition } from './task.js';
import { abortableSleep, withTimeout } from '@pgdispatch/core/timing';

export type { JobOutcome } from './held-job.js';

export interface WorkerRuntimeOptions {
  transport: Transport;
  /**
   * The tasks this worker can run. Every dequeue declares their names, so the api hands it only
   * jobs of these tasks; the others wait for a worker that knows them (a rolling deploy).
   */
  tasks: TaskRegistry | Iterable<TaskDefinition>;
  /** Queues to pull from: `*` (default) or names. */
  queues?: '*' | string[];
  /** Most handlers running at once (default 16). */
  concurrency?: number;
  /** Interval of the batched lease heartbeat, in ms (default 10000; keep it under lease / 2). */
  heartbeatMs?: number;
  /** After stop(), how long in-flight handlers may finish before they are aborted and their jobs released, in ms (default 25000). */
  shutdownGraceMs?: number;
  /**
   * Jobs claimed ahead of free handler slots (default 0 = claim only for free slots). Buffered
   * jobs hold leases (heartbeated) and start as slots free up, so a handler never waits for a
   * dequeue round trip: the throughput setting.
   */
  prefetch?: number;
  /** Long-poll bound of one dequeue, in ms (default 30000). */
  dequeueWaitMs?: number;
  /** Backoff after a failed dequeue (default base 500 ms, cap 30000 ms, full jitter). */
  dequeueBackoff?: BackoffPolicy;
  log?: Logger;
  /** Called once per job when its handling ends; feeds metrics (durations, outcomes). */
  onJobFinished?: (event: JobFinishedEvent) => void;
}

export interface JobFinishedEvent {
  job: ClaimedJob;
  outcome: JobOutcome;
  /** Handler start to outcome, in ms. */
  durationMs: number;
}

export interface WorkerStats {
  running: boolean;
  concurrency: number;
  inFlight: number;
  started: number;
  succeeded: number;
  /** Failures recorded (retryable or final), cancellations excluded. */
  failed: number;
  cancelled: number;
  leaseLost: number;
  released: number;
  unreported: number;
  dequeueErrors: number;
  heartbeatErrors: number;
}

type CounterName = Exclude<keyof WorkerStats, 'running' | 'concurrency' | 'inFlight' | 'heartbeatErrors'>;

/** A reply faster than this from an empty long-poll means the transport is not waiting. */
const EMPTY_REPLY_FAST_MS = 50;
/** Pause after such a fast empty reply, so a misbehaving transport cannot spin the CPU. */
const IDLE_PAUSE_MS = 250;
/** Pause after a batch of nothing but unknown tasks (only an api that ignores `tasks` sends those). */
const UNKNOWN_TASK_PAUSE_MS = 1_000;
/**
 * Unacknowledged outcome reports allowed per handler slot before the runtime stops claiming; with
 * prefetch, one prefetch window more (see #wanted).
 */
const REPORTS_PER_SLOT = 4;

export class WorkerRuntime {
  readonly #transport: Transport;
  readonly #tasks: TaskRegistry;
  readonly #queues: '*' | string[];
  readonly #concurrency: number;
  readonly #prefetch: number;
  readonly #graceMs: number;
  readonly #waitMs: number;
  readonly #backoff: BackoffPolicy;
  readonly #log: Logger;
  readonly #onJobFinished: ((e: JobFinishedEvent) => void) | undefined;
  readonly #delivery: OutcomeDelivery;
  readonly #heartbeat: Heartbeat;
  readonly #runnerDeps: RunnerDeps;

  /** Every job this worker holds a lease on, keyed by lease token (a re-claim is a new entry). */
  readonly #held = new Map<string, HeldJob>();
  /** Claimed jobs waiting for a handler slot, oldest first (also in #held, so they are heartbeated). */
  readonly #buffer: HeldJob[] = [];
  /** Handlers executing now (≤ concurrency); jobs whose outcome is being reported do not count. */
  #running = 0;
  readonly #counters: Record<CounterName, number> = {
    started: 0, succeeded: 0, failed: 0, cancelled: 0, leaseLost: 0, released: 0, unreported: 0, dequeueErrors: 0,
  };
  #state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  /** Aborts the pending long-poll and any backoff sleep of the loop. */
  /** How the last dequeue went: the fact behind readiness. */
  readonly #connection = new ApiConnectionTracker();
  readonly #stopController = new AbortController();
  #loopDone: Promise<void> = Promise.resolve();
  #stopDone: Promise<void> | undefined;
  #slotFreed: (() => void) | undefined;

  constructor(opts: WorkerRuntimeOptions) {
    this.#transport = opts.transport;
    this.#tasks = opts.tasks instanceof TaskRegistry ? opts.tasks : new TaskRegistry(opts.tasks);
    this.#queues = opts.queues ?? '*';
    this.#concurrency = positiveInt(opts.concurrency ?? 16, 'concurrency');
    this.#prefetch = Math.max(0, Math.floor(opts.prefetch ?? 0));
    this.#graceMs = Math.max(0, opts.shutdownGraceMs ?? 25_000);
    this.#waitMs = Math.min(Math.max(0, opts.dequeueWaitMs ?? 30_000), LIMITS.waitMsMax);
    this.#backoff = opts.dequeueBackoff ?? { baseMs: 500, maxMs: 30_000 };
    this.#log = opts.log ?? silentLogger;
    this.#onJobFinished = opts.onJobFinished;
    this.#delivery = new OutcomeDelivery(this.#transport, this.#log);
    this.#runnerDeps = { tasks: this.#tasks, transport: this.#transport, log: this.#log };
    this.#heartbeat = new Heartbeat({ transport: this.#transport, log: this.#log, intervalMs: positiveInt(opts.heartbeatMs ?? 10_000, 'heartbeatMs'), held: () => this.#held.values() });
    if (this.#queues !== '*' && this.#queues.length === 0) throw new TypeError('queues must be "*" or a non-empty list');
    if (this.#tasks.size === 0) throw new TypeError('a worker needs at least one task');
  }

  /** Starts pulling and heartbeating. A runtime runs once: start after stop throws. */
  start(): void {
    if (this.#state !== 'new') throw new Error(`worker runtime cannot start: it is ${this.#state}`);
    this.#state = 'running';
    this.#heartbeat.start();
    this.#log.info('worker runtime started', { queues: this.#queues, concurrency: this.#concurrency, prefetch: this.#prefetch, tasks: this.#tasks.names() });
    this.#loopDone = this.#loop().catch((err: unknown) => {
      // The loop catches per iteration; reaching here is a bug worth shouting about, not hiding.
      this.#log.error('dequeue loop crashed', { err });
    });
  }

  /**
   * Graceful stop: no new dequeues (the pending long-poll is aborted), buffered jobs are released
   * at once, in-flight handlers get `shutdownGraceMs` to finish, then their signals abort and every
   * job still held is released to the queue without spending an attempt. Resolves when that is
   * done; safe to call twice.
   */
  stop(): Promise<void> {
    this.#stopDone ??= this.#shutdown();
    return this.#stopDone;
  }

  /** A snapshot of the counters, for metrics and health endpoints. */
  stats(): WorkerStats {
    return { running: this.#state === 'running', concurrency: this.#concurrency, inFlight: this.#held.size, ...this.#counters, heartbeatErrors: this.#heartbeat.errors };
  }

  /** Jobs currently held (buffered, running or reporting). */
  /** The control plane as this worker's dequeues found it: ok, credential refused, unreachable. */
  connection(): ApiConnection {
    return this.#connection.get();
  }

  get inFlight(): number {
    return this.#held.size;
  }

  /**
   * How many jobs to ask for now: free slots plus the prefetch allowance, minus the buffer. A
   * backlog of unacknowledged reports (a slow control plane) holds back new claims too. With
   * prefetch, a whole prefetched window may be in its report while the next window is claimed:
   * fast handlers finish a window at once, and with only `concurrency × 4` of headroom the next
   * claim had to wait for that window's completion statement, so claims and completions
   * alternated instead of overlapping (`all (throughput)`, prefetch 500: 7.4k → 8.7–9.6k jobs/s,
   * 2 rounds each, `ONLY=processing SYSTEMS="all (throughput)"`).
   */
  #wanted(): number {
    const reporting = this.#held.size - this.#running - this.#buffer.length;
    return Math.min(
      this.#concurrency + this.#prefetch - this.#running - this.#buffer.length,
      this.#concurrency * REPORTS_PER_SLOT + 2 * this.#prefetch - reporting,
      LIMITS.dequeueMax,
    );
  }

  async #loop(): Promise<void> {
    let failures = 0;
    const stopSignal = this.#stopController.signal;
    while (this.#state === 'running') {
      const wanted = this.#wanted();
      if (wanted <= 0) {
        await new Promise<void>((resolve) => (this.#slotFreed = resolve));
        // Let every handler that ends in this turn free its slot first: one dequeue for all of
        // them instead of one for the first and another for the rest.
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      const askedAt = Date.now();
      let jobs: ClaimedJob[];
      try {
        // Until a dequeue has been answered, ask without waiting: the answer (or the refusal)
        // comes at once, so readiness is known within a round trip, not after a long-poll.
        const waitMs = this.#connection.get().state === 'ok' ? this.#waitMs : 0;
        jobs = await this.#transport.dequeue({ queues: this.#queues, tasks: this.#tasks.names(), max: wanted, waitMs, signal: stopSignal });
        failures = 0;
        this.#connection.ok();
      } catch (err) {
        if (this.#state !== 'running') break;
        this.#connection.failed(err);
        failures++;
        this.#counters.dequeueErrors++;
        const delay = backoffDelayMs(failures, this.#backoff);
        this.#log.warn('dequeue failed; backing off', { err, failures, delayMs: delay });
        if (!(await abortableSleep(delay, stopSignal))) break;
        continue;
      }
      // Jobs that arrive after stop() began, or beyond what was asked, are given back unstarted.
      const keep = this.#state === 'running' ? jobs.slice(0, wanted) : [];
      const extra = jobs.slice(keep.length);
      if (extra.length > 0) void this.#release(extra);
      for (const job of keep) {
        const held = new HeldJob(job);
        this.#held.set(job.leaseToken, held);
        this.#buffer.push(held);
      }
      this.#pump();
      if (jobs.length === 0 && Date.now() - askedAt < EMPTY_REPLY_FAST_MS) await abortableSleep(IDLE_PAUSE_MS, stopSignal);
      else if (jobs.length > 0 && jobs.every((j) => !this.#tasks.has(j.task))) await abortableSleep(UNKNOWN_TASK_PAUSE_MS, stopSignal);
    }
  }

  /** Starts buffered jobs while handler slots are free; drops the ones whose lease was lost meanwhile. */
  #pump(): void {
    while (this.#running < this.#concurrency && this.#buffer.length > 0 && this.#state === 'running') {
      const held = this.#buffer.shift()!;
      if (held.dropped) this.#forget(held);
      else this.#start(held);
    }
  }

  #start(held: HeldJob): void {
    held.startedAt = Date.now();
    this.#running++;
    this.#counters.started++;
    held.done = this.#handle(held);
  }

  /**
   * Runs the handler (holding a slot), frees the slot, reports (holding none), then counts the
   * outcome and forgets the job. One async function per job, no promise chain: the runtime's own
   * cost is what a trivial handler's throughput measures. Never rejects.
   */
  async #handle(held: HeldJob): Promise<void> {
    try {
      let verdict: Verdict;
      try {
        verdict = await runJob(held, this.#runnerDeps);
      } finally {
        this.#running--;
        this.#pump();
        this.#wakeLoop();
      }
      const settled = this.#settle(held, verdict);
      const outcome = typeof settled === 'string' ? settled : await settled;
      held.to('done');
      // `released` is counted by #release, which knows whether the control plane accepted it.
      if (outcome !== 'released') this.#counters[outcome === 'lease_lost' ? 'leaseLost' : outcome]++;
      this.#onJobFinished?.({ job: held.job, outcome, durationMs: Date.now() - held.startedAt });
    } catch (err) {
      this.#log.error('job bookkeeping failed', { err, jobId: held.job.id });
    } finally {
      this.#forget(held);
    }
  }

  /** What the verdict comes to, given what happened to the lease meanwhile. */
  #settle(held: HeldJob, verdict: Verdict): JobOutcome | Promise<JobOutcome> {
    if (held.state === 'released') return 'released';
    if (held.state === 'lost') return this.#delivery.lost(held, 'handler ended');
    if (verdict.kind === 'unknown_task') {
      // The dequeue declared our tasks, so only an api that predates task routing sends this.
      // Another worker (or the next version of this one) may know it: give it back unspent.
      held.to('released');
      this.#log.warn('job of a task this worker does not know; released without spending an attempt', { jobId: held.job.id, task: held.job.task });
      return this.#release([held.job]).then(() => 'released' as const);
    }
    if (verdict.kind === 'lost') {
      held.to('lost'); // the handler saw lease_lost itself (a step, a child enqueue) before any heartbeat did
      return this.#delivery.lost(held, 'handler');
    }
    held.to('reporting');
    return this.#delivery.report(held, verdict);
  }

  #forget(held: HeldJob): void {
    this.#held.delete(held.job.leaseToken);
    this.#wakeLoop();
  }

  #wakeLoop(): void {
    const wake = this.#slotFreed;
    this.#slotFreed = undefined;
    wake?.();
  }

  async #shutdown(): Promise<void> {
    if (this.#state === 'new') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopping';
    this.#log.info('worker runtime stopping', { inFlight: this.#held.size, graceMs: this.#graceMs });
    this.#stopController.abort(new WorkerShutdownError());
    this.#wakeLoop();
    await this.#loopDone;
    // Buffered jobs never started: give them back now rather than after the grace period.
    const unstarted = this.#buffer.splice(0);
    for (const h of unstarted) this.#held.delete(h.job.leaseToken);
    const live = unstarted.filter((h) => !h.dropped);
    for (const h of live) h.to('released');
    if (live.length > 0) await this.#release(live.map((h) => h.job));

    const finished = await withTimeout(Promise.all([...this.#held.values()].map((h) => h.done)), this.#graceMs);
    if (!finished) {
      this.#delivery.forced = true;
      const toRelease = [...this.#held.values()].filter((h) => h.state === 'held' || h.state === 'cancelling');
      for (const h of toRelease) h.to('released', new WorkerShutdownError('worker shut down before the job finished; it was released to the queue'));
      await this.#release(toRelease.map((h) => h.job));
    }
    this.#heartbeat.stop();
    this.#state = 'stopped';
    this.#log.info('worker runtime stopped', { stats: this.stats() });
  }

  async #release(jobs: ClaimedJob[]): Promise<void> {
    this.#counters.released += await this.#delivery.release(jobs);
  }
}

function positiveInt(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 1) throw new TypeError(`${name} must be a positive integer, got ${v}`);
  return v;
}
