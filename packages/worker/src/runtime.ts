/**
 * The worker runtime: pulls jobs through a Transport (in-process in role all, HTTP in role
 * worker), runs their handlers with bounded concurrency, keeps their leases alive with batched
 * heartbeats, reports outcomes and shuts down gracefully.
 *
 * Pull model: one dequeue long-poll at a time asks for exactly the free handler slots, so the
 * control plane never claims a job this process cannot start right away.
 */
import { backoffDelayMs } from '@pgdispatch/core/backoff';
import type { BackoffPolicy } from '@pgdispatch/core/backoff';
import { isDispatchError, leaseLost } from '@pgdispatch/core/errors';
import type { LeaseRef, Transport } from '@pgdispatch/core/transport';
import type { ClaimedJob } from '@pgdispatch/core/types';
import { createJobContext } from './context.js';
import { declaresNonRetryable, JobCancelledError, NonRetryableError, WorkerShutdownError } from './errors.js';
import { LIMITS } from '@pgdispatch/core/internal-api';
import { toJobError, toJsonValue } from './json.js';
import { silentLogger } from '@pgdispatch/core/log';
import type { Logger } from '@pgdispatch/core/log';
import { TaskRegistry } from './task.js';
import type { TaskDefinition } from './task.js';
import { abortableSleep, chunk, withTimeout } from './timing.js';

export interface WorkerRuntimeOptions {
  transport: Transport;
  /** The tasks this worker can run; a job of any other task fails non-retryable. */
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

/**
 * How handling a job ended, from this worker's point of view:
 * `succeeded`/`failed`/`cancelled` were recorded; `lease_lost` means the result was dropped
 * (the job is or will be run elsewhere); `released` means it went back to the queue at shutdown;
 * `unreported` means the outcome could not be delivered (the lease will expire, the job re-runs).
 */
export type JobOutcome = 'succeeded' | 'failed' | 'cancelled' | 'lease_lost' | 'released' | 'unreported';

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

type CounterName = Exclude<keyof WorkerStats, 'running' | 'concurrency' | 'inFlight'>;

interface Held {
  job: ClaimedJob;
  controller: AbortController;
  startedAt: number;
  /** The heartbeat said the lease is gone: nothing this holder writes counts any more. */
  lost: boolean;
  cancelRequested: boolean;
  /** Given back at shutdown: the handler's eventual outcome is dropped. */
  released: boolean;
  /** The handler returned or threw; only its report is pending. */
  reporting: boolean;
  /** Occupies a handler slot (between start and the end of the handler). */
  started: boolean;
  /** Settles when the entry has left the held set. */
  done: Promise<void>;
}

/** A reply faster than this from an empty long-poll means the transport is not waiting. */
const EMPTY_REPLY_FAST_MS = 50;
/** Pause after such a fast empty reply, so a misbehaving transport cannot spin the CPU. */
const IDLE_PAUSE_MS = 250;
/** Tries to deliver a job outcome when the control plane is unavailable (leases outlive a blip). */
const REPORT_ATTEMPTS = 6;
const REPORT_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 10_000 };

export class WorkerRuntime {
  readonly #transport: Transport;
  readonly #tasks: TaskRegistry;
  readonly #queues: '*' | string[];
  readonly #concurrency: number;
  readonly #prefetch: number;
  /** Claimed jobs waiting for a handler slot (also in #held, so they are heartbeated). */
  readonly #buffer: Held[] = [];
  /** Handlers executing now (≤ concurrency); jobs whose outcome is being reported do not count. */
  #running = 0;
  readonly #heartbeatMs: number;
  readonly #graceMs: number;
  readonly #waitMs: number;
  readonly #backoff: BackoffPolicy;
  readonly #log: Logger;
  readonly #onJobFinished: ((e: JobFinishedEvent) => void) | undefined;

  /** Keyed by lease token: a job re-claimed by this worker after losing its lease is a new entry. */
  readonly #held = new Map<string, Held>();
  readonly #counters: Record<CounterName, number> = {
    started: 0, succeeded: 0, failed: 0, cancelled: 0, leaseLost: 0, released: 0, unreported: 0, dequeueErrors: 0, heartbeatErrors: 0,
  };
  #state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  /** Aborts the pending long-poll and any backoff sleep of the loop. */
  readonly #stopController = new AbortController();
  #loopDone: Promise<void> = Promise.resolve();
  #stopDone: Promise<void> | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #beating = false;
  #slotFreed: (() => void) | undefined;
  /** Set when the grace period ran out: outcome reports stop retrying. */
  #forced = false;

  constructor(opts: WorkerRuntimeOptions) {
    this.#transport = opts.transport;
    this.#tasks = opts.tasks instanceof TaskRegistry ? opts.tasks : new TaskRegistry(opts.tasks);
    this.#queues = opts.queues ?? '*';
    this.#concurrency = positiveInt(opts.concurrency ?? 16, 'concurrency');
    this.#prefetch = Math.max(0, Math.floor(opts.prefetch ?? 0));
    this.#heartbeatMs = positiveInt(opts.heartbeatMs ?? 10_000, 'heartbeatMs');
    this.#graceMs = Math.max(0, opts.shutdownGraceMs ?? 25_000);
    this.#waitMs = Math.min(Math.max(0, opts.dequeueWaitMs ?? 30_000), LIMITS.waitMsMax);
    this.#backoff = opts.dequeueBackoff ?? { baseMs: 500, maxMs: 30_000 };
    this.#log = opts.log ?? silentLogger;
    this.#onJobFinished = opts.onJobFinished;
    if (this.#queues !== '*' && this.#queues.length === 0) throw new TypeError('queues must be "*" or a non-empty list');
  }

  /** Starts pulling and heartbeating. A runtime runs once: start after stop throws. */
  start(): void {
    if (this.#state !== 'new') throw new Error(`worker runtime cannot start: it is ${this.#state}`);
    this.#state = 'running';
    this.#heartbeatTimer = setInterval(() => void this.#heartbeat(), this.#heartbeatMs);
    this.#log.info('worker runtime started', { queues: this.#queues, concurrency: this.#concurrency, tasks: this.#tasks.names() });
    this.#loopDone = this.#loop().catch((err: unknown) => {
      // The loop catches per iteration; reaching here is a bug worth shouting about, not hiding.
      this.#log.error('dequeue loop crashed', { err });
    });
  }

  /**
   * Graceful stop: no new dequeues (the pending long-poll is aborted), in-flight handlers get
   * `shutdownGraceMs` to finish, then their signals abort and every job still held is released
   * to the queue without spending an attempt. Resolves when that is done; safe to call twice.
   */
  stop(): Promise<void> {
    this.#stopDone ??= this.#shutdown();
    return this.#stopDone;
  }

  /** A snapshot of the counters, for metrics and health endpoints. */
  stats(): WorkerStats {
    return { running: this.#state === 'running', concurrency: this.#concurrency, inFlight: this.#held.size, ...this.#counters };
  }

  /** Jobs currently held (running or reporting). */
  get inFlight(): number {
    return this.#held.size;
  }

  async #loop(): Promise<void> {
    let failures = 0;
    const stopSignal = this.#stopController.signal;
    while (this.#state === 'running') {
      // Reporting an outcome does not occupy a handler slot, but a backlog of unacknowledged
      // reports (a slow control plane) does hold back new claims.
      const reporting = this.#held.size - this.#running - this.#buffer.length;
      const free = Math.min(this.#concurrency + this.#prefetch - this.#running - this.#buffer.length, LIMITS.dequeueMax, this.#concurrency * 4 + this.#prefetch - reporting);
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.#slotFreed = resolve));
        // Let every handler that ends in this turn free its slot first: one dequeue for all of
        // them instead of one for the first and another for the rest.
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      const askedAt = Date.now();
      let jobs: ClaimedJob[];
      try {
        jobs = await this.#transport.dequeue({ queues: this.#queues, max: free, waitMs: this.#waitMs, signal: stopSignal });
        failures = 0;
      } catch (err) {
        if (this.#state !== 'running') break;
        failures++;
        this.#counters.dequeueErrors++;
        const delay = backoffDelayMs(failures, this.#backoff);
        this.#log.warn('dequeue failed; backing off', { err, failures, delayMs: delay });
        if (!(await abortableSleep(delay, stopSignal))) break;
        continue;
      }
      // Jobs that arrive after stop() began, or beyond what was asked, are given back unstarted.
      const keep = this.#state === 'running' ? jobs.slice(0, free) : [];
      const extra = jobs.slice(keep.length);
      if (extra.length > 0) void this.#release(extra);
      for (const job of keep) this.#hold(job);
      this.#pump();
      if (jobs.length === 0 && Date.now() - askedAt < EMPTY_REPLY_FAST_MS) await abortableSleep(IDLE_PAUSE_MS, stopSignal);
    }
  }

  /** Takes a claimed job into the buffer; it starts when a handler slot is free. */
  #hold(job: ClaimedJob): void {
    const held: Held = {
      job, controller: new AbortController(), startedAt: Date.now(), lost: false, cancelRequested: false, released: false, reporting: false, started: false, done: Promise.resolve(),
    };
    this.#held.set(job.leaseToken, held);
    this.#buffer.push(held);
  }

  /** Starts buffered jobs while handler slots are free. */
  #pump(): void {
    while (this.#running < this.#concurrency && this.#buffer.length > 0 && this.#state === 'running') {
      const held = this.#buffer.shift() as Held;
      if (held.lost || held.released) {
        this.#forget(held);
        continue;
      }
      this.#startJob(held);
    }
  }

  #startJob(held: Held): void {
    const { job } = held;
    held.started = true;
    held.startedAt = Date.now();
    this.#running++;
    this.#counters.started++;
    held.done = this.#run(held)
      .then((outcome) => {
        // `released` is counted by #release, which knows whether the control plane accepted it.
        if (outcome !== 'released') this.#counters[outcome === 'lease_lost' ? 'leaseLost' : outcome]++;
        this.#onJobFinished?.({ job, outcome, durationMs: Date.now() - held.startedAt });
      })
      .catch((err: unknown) => this.#log.error('job bookkeeping failed', { err, jobId: job.id }))
      .finally(() => {
        this.#handlerDone(held);
        this.#forget(held);
      });
  }

  /** The handler returned or threw: its slot is free while the outcome is still being reported. */
  #handlerDone(held: Held): void {
    if (held.reporting && !held.started) return;
    if (!held.reporting) held.reporting = true;
    if (held.started) {
      held.started = false;
      this.#running--;
      this.#pump();
      this.#wakeLoop();
    }
  }

  #forget(held: Held): void {
    this.#held.delete(held.job.leaseToken);
    this.#wakeLoop();
  }

  #wakeLoop(): void {
    const wake = this.#slotFreed;
    this.#slotFreed = undefined;
    wake?.();
  }

  /** Runs one job to its outcome. Never throws: every path ends in a JobOutcome. */
  async #run(held: Held): Promise<JobOutcome> {
    const { job } = held;
    const log = this.#log;
    const task = this.#tasks.get(job.task);
    if (!task) {
      const err = new NonRetryableError(`no task named ${JSON.stringify(job.task)} is registered on this worker`, {
        details: { task: job.task, known: this.#tasks.names() },
      });
      return this.#reportFailure(held, err, false);
    }
    let payload: unknown;
    try {
      const parsed = await task.payload.safeParseAsync(job.payload);
      if (!parsed.success) {
        const err = new NonRetryableError(`payload does not match the schema of task ${job.task}`, { details: { issues: parsed.error.issues } });
        return this.#reportFailure(held, err, false);
      }
      payload = parsed.data;
    } catch (err) {
      // A refinement that throws (instead of reporting an issue) is the task's bug, not the data's.
      return this.#reportFailure(held, err, this.#isRetryable(task, err));
    }

    let result: unknown;
    try {
      const ctx = createJobContext({ job, transport: this.#transport, signal: held.controller.signal, log });
      result = await task.handler(payload, ctx);
    } catch (err) {
      this.#handlerDone(held);
      if (held.released) return 'released';
      if (held.lost || isDispatchError(err, 'lease_lost')) return this.#dropLost(held, 'handler failed');
      // The engine records a failure of a job with cancel requested as `cancelled`.
      if (held.cancelRequested) return this.#reportFailure(held, err, false);
      return this.#reportFailure(held, err, this.#isRetryable(task, err));
    }
    this.#handlerDone(held);
    if (held.released) return 'released';
    if (held.lost) return this.#dropLost(held, 'handler succeeded');
    let json: unknown;
    try {
      json = toJsonValue(result, 'job result');
    } catch (err) {
      return this.#reportFailure(held, err, false);
    }
    return this.#deliver(held, async () => {
      const out = await this.#transport.complete({ id: job.id, leaseToken: job.leaseToken, result: json });
      if (!out.ok) return this.#dropLost(held, 'complete');
      log.debug('job succeeded', { jobId: job.id, task: job.task, attempt: job.attempt });
      return 'succeeded';
    });
  }

  #reportFailure(held: Held, err: unknown, retryable: boolean): Promise<JobOutcome> {
    this.#handlerDone(held);
    const { job } = held;
    const error = toJobError(err, retryable);
    return this.#deliver(held, async () => {
      const out = await this.#transport.fail({ id: job.id, leaseToken: job.leaseToken, error, retryable });
      if (!out.ok) return this.#dropLost(held, 'fail');
      const cancelled = out.state === 'cancelled';
      this.#log[cancelled ? 'info' : 'warn'](cancelled ? 'job cancelled' : 'job failed', {
        jobId: job.id, task: job.task, attempt: job.attempt, state: out.state, retryable, error: error.message,
      });
      return cancelled ? 'cancelled' : 'failed';
    });
  }

  /** Delivers an outcome, retrying while the control plane is unavailable and the lease may still hold. */
  async #deliver(held: Held, send: () => Promise<JobOutcome>): Promise<JobOutcome> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send();
      } catch (err) {
        if (isDispatchError(err, 'lease_lost')) return this.#dropLost(held, 'report');
        const retry = isDispatchError(err) && err.retryable && attempt < REPORT_ATTEMPTS && !held.lost && !this.#forced;
        if (!retry) {
          this.#log.error('job outcome not delivered; the job will run again once its lease expires', { err, jobId: held.job.id });
          return 'unreported';
        }
        await abortableSleep(backoffDelayMs(attempt, REPORT_BACKOFF));
      }
    }
  }

  #dropLost(held: Held, when: string): JobOutcome {
    held.lost = true;
    this.#log.warn('lease lost; outcome dropped (the job is or will be run elsewhere)', { jobId: held.job.id, task: held.job.task, when });
    return 'lease_lost';
  }

  #isRetryable(task: TaskDefinition, err: unknown): boolean {
    if (declaresNonRetryable(err)) return false;
    if (typeof task.retryable === 'function') {
      try {
        return task.retryable(err);
      } catch (predicateErr) {
        this.#log.error('retryable predicate threw; treating the error as retryable', { err: predicateErr, task: task.name });
        return true;
      }
    }
    return task.retryable !== false;
  }

  /** One call extends every held lease; replies abort the signals of cancelled or lost jobs. */
  async #heartbeat(): Promise<void> {
    if (this.#beating) return; // a slow reply must not pile up overlapping heartbeats
    const live = [...this.#held.values()].filter((h) => !h.lost && !h.released);
    if (live.length === 0) return;
    this.#beating = true;
    try {
      for (const part of chunk(live, LIMITS.batchItems)) {
        const byId = new Map(part.map((h) => [h.job.id, h]));
        const replies = await this.#transport.heartbeat(part.map(ref));
        for (const r of replies) {
          const h = byId.get(r.id);
          if (!h) continue;
          if (!r.ok) {
            // A job whose outcome is in flight may simply be finished by now: not a lost lease.
            if (h.reporting) continue;
            h.lost = true;
            h.controller.abort(leaseLost(r.id));
            this.#log.warn('lease lost; aborting the handler', { jobId: r.id, task: h.job.task });
          } else if (r.cancelRequested && !h.cancelRequested) {
            h.cancelRequested = true;
            h.controller.abort(new JobCancelledError(r.id));
            this.#log.info('cancel requested; aborting the handler', { jobId: r.id, task: h.job.task });
          }
        }
      }
    } catch (err) {
      this.#counters.heartbeatErrors++;
      this.#log.warn('heartbeat failed; leases may expire if this persists', { err, jobs: live.length });
    } finally {
      this.#beating = false;
    }
  }

  async #shutdown(): Promise<void> {
    if (this.#state === 'new') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopping';
    this.#log.info('worker runtime stopping', { inFlight: this.#held.size, graceMs: this.#graceMs });
    this.#stopController.abort(new WorkerShutdownError());
    const wake = this.#slotFreed;
    this.#slotFreed = undefined;
    wake?.();
    await this.#loopDone;
    // Buffered jobs never started: give them back now rather than after the grace period.
    const unstarted = this.#buffer.splice(0);
    for (const h of unstarted) {
      h.released = true;
      this.#held.delete(h.job.leaseToken);
    }
    if (unstarted.length > 0) await this.#release(unstarted.map((h) => h.job));

    const finished = await withTimeout(Promise.all([...this.#held.values()].map((h) => h.done)), this.#graceMs);
    if (!finished) {
      this.#forced = true;
      const toRelease = [...this.#held.values()].filter((h) => !h.reporting && !h.lost && !h.released);
      for (const h of toRelease) {
        h.released = true;
        h.controller.abort(new WorkerShutdownError('worker shut down before the job finished; it was released to the queue'));
      }
      await this.#release(toRelease.map((h) => h.job));
    }
    clearInterval(this.#heartbeatTimer);
    this.#state = 'stopped';
    this.#log.info('worker runtime stopped', { stats: this.stats() });
  }

  /** Gives jobs back to their queues without spending an attempt. */
  async #release(jobs: ClaimedJob[]): Promise<void> {
    for (const part of chunk(jobs, LIMITS.batchItems)) {
      try {
        const outcomes = await this.#transport.release(part.map(ref));
        const lost = outcomes.filter((o) => !o.ok).map((o) => o.id);
        this.#counters.released += outcomes.length - lost.length;
        this.#log.info('released jobs to their queues', { released: outcomes.length - lost.length, leaseLost: lost });
      } catch (err) {
        this.#log.error('release failed; these jobs run again once their leases expire', { err, jobIds: part.map((j) => j.id) });
      }
    }
  }
}

function ref(h: Held | ClaimedJob): LeaseRef {
  const job = 'job' in h ? h.job : h;
  return { id: job.id, leaseToken: job.leaseToken };
}

function positiveInt(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 1) throw new TypeError(`${name} must be a positive integer, got ${v}`);
  return v;
}
