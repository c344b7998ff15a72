/**
 * The context a handler receives: who the job is, its abort signal, checkpointed steps,
 * progress events, idempotent child jobs and a job-scoped logger. Every write names the job's
 * lease token, so a holder that lost its lease can change nothing (the control plane answers
 * lease_lost).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { isDispatchError } from '@pgdispatch/core/errors';
import type { ChildJob, Transport } from '@pgdispatch/core/transport';
import type { ClaimedJob } from '@pgdispatch/core/types';
import { toJsonValue } from './json.js';
import { childLogger } from '@pgdispatch/core/log';
import type { Logger } from '@pgdispatch/core/log';

/** Longest step name, in characters (derived child keys add a prefix and a counter). */
export const STEP_NAME_MAX = 128;
/** Longest explicit child key, in characters. */
export const CHILD_KEY_MAX = 180;

export interface JobContext {
  readonly jobId: number;
  /** 1 on the first run, 2 on the first retry, … */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly queue: string;
  readonly task: string;
  /**
   * Aborts when the job is cancelled, when its lease is lost (another worker may run it now),
   * or when the worker shuts down and the grace period is over. `signal.reason` says which:
   * a DispatchError('lease_lost'), a JobCancelledError or a WorkerShutdownError.
   */
  readonly signal: AbortSignal;
  /**
   * Stable for the job across all its attempts (`pgdispatch-job-<id>`): pass it to downstream
   * services (e.g. an `Idempotency-Key` header) so they can deduplicate a retried call.
   */
  readonly idempotencyKey: string;
  /** Structured logger; every line carries jobId, task and attempt. */
  readonly log: Logger;
  /**
   * Runs `fn` once per job, not once per attempt: its result is checkpointed, and on a retry a
   * step already recorded returns the saved result without running. Names must be unique
   * within a run (1–128 characters). The result must be JSON; the value returned is its JSON
   * round trip on the first run and on replay alike (a Date becomes a string, undefined null).
   * A step that throws is not recorded and runs again on the next attempt.
   */
  step<T>(name: string, fn: () => Promise<T> | T): Promise<T>;
  /**
   * Publishes a progress event on the job's stream. Best effort: a failure is logged, not
   * thrown, except lease_lost (this worker no longer owns the job).
   */
  progress(data: unknown): Promise<void>;
  /**
   * Enqueues a child job, exactly once per parent and key. Without `key`, the key is derived
   * so that a retry re-issuing the same calls in the same order finds the first attempt's
   * children instead of duplicating them:
   * - inside `step(S, …)`: `step:S:<n>`, the n-th enqueue of that step (0-based);
   * - outside any step: `call:<n>`, the n-th such enqueue of this run (0-based; the counter
   *   restarts each attempt).
   * Handlers that enqueue conditionally or in a nondeterministic order should pass `key`
   * (stored as `key:<key>`, so it never collides with a derived one).
   */
  enqueue(job: ChildJob, opts?: { key?: string }): Promise<{ jobId: number; created: boolean }>;
}

/** The idempotency key of a job, the same on every attempt. */
export function jobIdempotencyKey(jobId: number): string {
  return `pgdispatch-job-${jobId}`;
}

interface StepScope {
  owner: object;
  name: string;
  enqueues: number;
}

// Tracks which step the current async call chain is inside, so that ctx.enqueue keys children
// by step even when steps run concurrently (Promise.all) in one handler.
const stepScope = new AsyncLocalStorage<StepScope>();

export interface CreateContextParams {
  job: ClaimedJob;
  transport: Transport;
  /**
   * The handler's abort signal, or a function that returns it on first use: the runtime passes
   * the held job's lazy getter, so a handler that never reads `ctx.signal` costs no AbortController.
   */
  signal: AbortSignal | (() => AbortSignal);
  log: Logger;
}

/**
 * Builds the context of one attempt of one job. Cheap on purpose (one object per job): the
 * logger, the signal, the lease reference and the step bookkeeping are made on first use, since
 * most handlers use none of them.
 */
export function createJobContext(params: CreateContextParams): JobContext {
  return new AttemptContext(params);
}

class AttemptContext implements JobContext {
  readonly jobId: number;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly queue: string;
  readonly task: string;
  readonly #job: ClaimedJob;
  readonly #transport: Transport;
  readonly #parentLog: Logger;
  #signal: AbortSignal | (() => AbortSignal);
  #log: Logger | undefined;
  /** Saved steps, loaded at most once per attempt (lazily: tasks without steps pay nothing). */
  #saved: Promise<Record<string, unknown>> | undefined;
  #used: Set<string> | undefined;
  #calls = 0;

  constructor(p: CreateContextParams) {
    this.jobId = p.job.id;
    this.attempt = p.job.attempt;
    this.maxAttempts = p.job.maxAttempts;
    this.queue = p.job.queue;
    this.task = p.job.task;
    this.#job = p.job;
    this.#transport = p.transport;
    this.#parentLog = p.log;
    this.#signal = p.signal;
  }

  get signal(): AbortSignal {
    if (typeof this.#signal === 'function') this.#signal = this.#signal();
    return this.#signal;
  }

  get idempotencyKey(): string {
    return jobIdempotencyKey(this.#job.id);
  }

  get log(): Logger {
    this.#log ??= childLogger(this.#parentLog, { jobId: this.#job.id, task: this.#job.task, attempt: this.#job.attempt });
    return this.#log;
  }

  /** What every write of this attempt is fenced by. */
  get #lease(): { id: number; leaseToken: string } {
    return { id: this.#job.id, leaseToken: this.#job.leaseToken };
  }

  async step<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    if (typeof name !== 'string' || name.length === 0 || name.length > STEP_NAME_MAX) {
      throw new TypeError(`step name must be 1–${STEP_NAME_MAX} characters`);
    }
    // A repeated name would silently replay the first result for the second call.
    const used = (this.#used ??= new Set<string>());
    if (used.has(name)) throw new TypeError(`step ${JSON.stringify(name)} ran twice in one run; step names must be unique`);
    used.add(name);
    const saved = await this.#loadSteps();
    if (Object.hasOwn(saved, name)) {
      this.log.debug('step replayed from checkpoint', { step: name });
      return saved[name] as T;
    }
    this.signal.throwIfAborted();
    const value = await stepScope.run({ owner: this, name, enqueues: 0 }, fn);
    const json = toJsonValue(value, `result of step ${JSON.stringify(name)}`);
    await this.#transport.saveStep({ ...this.#lease, name, result: json });
    saved[name] = json;
    return json as T;
  }

  async progress(data: unknown): Promise<void> {
    const json = toJsonValue(data, 'progress data');
    try {
      await this.#transport.progress({ ...this.#lease, data: json });
    } catch (err) {
      if (isDispatchError(err, 'lease_lost')) throw err;
      this.log.warn('progress event not delivered', { err });
    }
  }

  async enqueue(job: ChildJob, opts: { key?: string } = {}): Promise<{ jobId: number; created: boolean }> {
    let key: string;
    if (opts.key !== undefined) {
      if (typeof opts.key !== 'string' || opts.key.length === 0 || opts.key.length > CHILD_KEY_MAX) {
        throw new TypeError(`child key must be 1–${CHILD_KEY_MAX} characters`);
      }
      key = `key:${opts.key}`;
    } else {
      const scope = stepScope.getStore();
      key = scope && scope.owner === this ? `step:${scope.name}:${scope.enqueues++}` : `call:${this.#calls++}`;
    }
    return this.#transport.enqueueChild({ ...this.#lease, key, job });
  }

  #loadSteps(): Promise<Record<string, unknown>> {
    if (!this.#saved) {
      const loading = this.#transport.loadSteps(this.#lease).then((steps) => ({ ...steps }));
      // A failed load is not cached: a later step() call in this run may try again.
      loading.catch(() => {
        if (this.#saved === loading) this.#saved = undefined;
      });
      this.#saved = loading;
    }
    return this.#saved;
  }
}
