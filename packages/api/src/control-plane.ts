import { Batcher } from '@pgdispatch/core/batcher';
import type { ChildJob, DequeueRequest, FailReply, HeartbeatReply, ItemRefusal, LeaseOutcome, LeaseRef, Transport } from '@pgdispatch/core/transport';
import type { ClaimedJob, JobError } from '@pgdispatch/core/types';
import type { Sql } from '@pgdispatch/engine/db';
import type { QueueScope } from '@pgdispatch/engine/queries/fenced';
import { jobAssertLease } from '@pgdispatch/engine/queries/job-admin';
import { jobCompleteMany, type CompleteItem } from '@pgdispatch/engine/queries/job-complete';
import { jobProgress } from '@pgdispatch/engine/queries/job-events';
import { jobFailMany, type FailItem, type FailOutcome } from '@pgdispatch/engine/queries/job-fail';
import { jobHeartbeatMany } from '@pgdispatch/engine/queries/job-heartbeat';
import { jobReleaseMany } from '@pgdispatch/engine/queries/job-release';
import { jobStepSave, jobStepsLoad } from '@pgdispatch/engine/queries/job-steps';
import type { Dispatcher } from './dispatcher.js';
import type { Enqueuer } from './enqueue.js';
import type { Metrics } from './metrics.js';
import { RunDurations } from './run-durations.js';
import { allowedQueues } from './tokens.js';
import type { ExecutorIdentity, WorkerPresence } from './worker-presence.js';

export interface ControlPlaneOptions {
  sql: Sql;
  /**
   * The pool the fenced lease writes (heartbeat, complete, fail, release) use, default `sql`: the
   * server gives them its generic-plan pool (the dispatcher's claim pool). Their generic plan is
   * the one PostgreSQL's plan cache picks anyway for batches of 16 and more; a write of one or a
   * few items otherwise got a custom plan, planned on every call (a one-job completion of a limited
   * queue: ~1.25 ms of server CPU against ~0.8 with its generic plan, PostgreSQL 15).
   */
  leaseSql?: Sql;
  dispatcher: Dispatcher;
  /** Creates the child jobs running jobs enqueue. */
  enqueuer: Enqueuer;
  /** Told of every dequeue, for `/readyz`. */
  presence: WorkerPresence;
  metrics: Metrics;
  leaseMs: number;
  maxPayloadBytes: number;
}

/**
 * The control plane's side of the Transport: every execution-state write goes through here. The
 * internal HTTP routes call it for remote workers and, in role all, it *is* the worker runtime's
 * Transport (in-process). Completions and failures arriving together are written by one statement
 * (Batcher). Its collaborators each do one job: the Dispatcher claims (and is the one owner of
 * releasing jobs whose requester left), the Enqueuer creates children, WorkerPresence and
 * RunDurations keep the bookkeeping behind `/readyz` and the metrics.
 *
 * Every write takes an optional `scope`: the queues of the worker credential behind the request
 * (the internal routes pass it; in-process, role all, it is `*`). A job outside it is `forbidden`
 * per item, checked in the write's own statement (engine/queries/fenced.ts). A result that cannot
 * be stored (or is over `maxPayloadBytes`) is answered per item and its job recorded failed.
 *
 * A write that frees a running slot of a concurrency-limited queue (or returns a job to its queue)
 * wakes this process's dispatcher for that queue as soon as it commits (`#wake`): in role all and
 * on the api that received the HTTP completion the next job is claimed without waiting for the
 * NOTIFY the statement also sends (which wakes the other api pods).
 */
export class ControlPlane implements Transport {
  readonly #completions: Batcher<CompleteItem, LeaseOutcome>;
  readonly #failures: Batcher<FailItem, FailOutcome>;
  readonly #durations: RunDurations;
  readonly #wake: (queues: string[]) => void;
  readonly #leaseSql: Sql;

  constructor(private readonly opts: ControlPlaneOptions) {
    this.#leaseSql = opts.leaseSql ?? opts.sql;
    this.#wake = (queues) => opts.dispatcher.wakeQueues(queues);
    // Outcomes are observed per flush, in the batch's own callback: a completion costs its caller
    // the Batcher's promise and nothing more (no async wrapper per job).
    this.#completions = new Batcher(async (items) => {
      const out = await jobCompleteMany(this.#leaseSql, { items, maxResultBytes: opts.maxPayloadBytes, onWake: this.#wake });
      for (const o of out) this.#observe(o, 'succeeded');
      return out;
    });
    this.#failures = new Batcher((items) => jobFailMany(this.#leaseSql, { items, onWake: this.#wake }));
    this.#durations = new RunDurations(opts.metrics);
  }

  /**
   * Long-polls the dispatcher. `who` says where the request came from (the internal HTTP route
   * passes the credential's subject). Jobs claimed for a request whose signal aborted before they
   * could be handed over (the HTTP client hung up) go back to the dispatcher to release: no
   * attempt spent.
   */
  async dequeue(req: DequeueRequest, who: ExecutorIdentity = { tier: 'in-process', subject: 'in-process' }): Promise<ClaimedJob[]> {
    const started = Date.now();
    const jobs = await this.opts.presence.track(who, req.queues, () => this.opts.dispatcher.request(req), req.tasks ?? '*');
    this.opts.metrics.dequeueWait.observe((Date.now() - started) / 1000);
    if (req.signal?.aborted && jobs.length > 0) {
      await this.opts.dispatcher.release(jobs);
      return [];
    }
    this.#durations.claimed(jobs);
    return jobs;
  }

  async heartbeat(items: LeaseRef[], scope: QueueScope = '*'): Promise<HeartbeatReply[]> {
    const out = await jobHeartbeatMany(this.#leaseSql, { items, leaseMs: this.opts.leaseMs, queues: scope });
    return out.map((o) => (o.ok ? { id: o.id, ok: true, cancelRequested: o.cancelRequested } : o));
  }

  /**
   * One completion. Unscoped ones (in-process) are coalesced by the Batcher; a scoped one (one
   * HTTP request on the single-job route) is written alone, since one statement has one scope.
   */
  complete(item: LeaseRef & { result?: unknown }, scope: QueueScope = '*'): Promise<LeaseOutcome> {
    const one = { id: item.id, leaseToken: item.leaseToken, result: item.result };
    return scope === '*' ? this.#completions.push(one) : this.completeMany([one], scope).then((out) => out[0] as LeaseOutcome);
  }

  /** Completions that arrived together over HTTP: one statement, reported per item. */
  async completeMany(items: (LeaseRef & { result?: unknown })[], scope: QueueScope = '*'): Promise<LeaseOutcome[]> {
    const out = await jobCompleteMany(this.#leaseSql, { items, queues: scope, maxResultBytes: this.opts.maxPayloadBytes, onWake: this.#wake });
    for (const o of out) this.#observe(o, 'succeeded');
    return out;
  }

  /** One failure; batched like complete() when unscoped. */
  async fail(item: LeaseRef & { error: JobError; retryable: boolean }, scope: QueueScope = '*'): Promise<FailReply> {
    const one = { id: item.id, leaseToken: item.leaseToken, error: item.error, retryable: item.retryable };
    const out = scope === '*' ? await this.#failures.push(one) : ((await jobFailMany(this.#leaseSql, { items: [one], queues: scope, onWake: this.#wake }))[0] as FailOutcome);
    return this.#failReply(out);
  }

  /** Failures that arrived together over HTTP: one transaction, reported per item. */
  async failMany(items: (LeaseRef & { error: JobError; retryable: boolean })[], scope: QueueScope = '*'): Promise<FailReply[]> {
    const out = await jobFailMany(this.#leaseSql, { items, queues: scope, onWake: this.#wake });
    return out.map((o) => this.#failReply(o));
  }

  /** Worker-initiated releases (graceful shutdown); the dispatcher counts its own. */
  async release(items: LeaseRef[], scope: QueueScope = '*'): Promise<LeaseOutcome[]> {
    const out = await jobReleaseMany(this.#leaseSql, { items, queues: scope, onWake: this.#wake });
    this.#durations.forget(out.filter((o) => o.ok).map((o) => o.id));
    this.opts.metrics.released.inc(out.filter((o) => o.ok).length);
    return out;
  }

  async loadSteps(ref: LeaseRef, scope: QueueScope = '*'): Promise<Record<string, unknown>> {
    await jobAssertLease(this.opts.sql, { id: ref.id, leaseToken: ref.leaseToken, queues: scope });
    return jobStepsLoad(this.opts.sql, { id: ref.id });
  }

  async saveStep(ref: LeaseRef & { name: string; result: unknown }, scope: QueueScope = '*'): Promise<void> {
    await jobStepSave(this.opts.sql, { ...ref, queues: scope });
  }

  async progress(ref: LeaseRef & { data: unknown }, scope: QueueScope = '*'): Promise<void> {
    await jobProgress(this.opts.sql, { ...ref, queues: scope });
  }

  /** The parent's queue must be in `scope` (the child's own queue is checked by the caller). */
  async enqueueChild(ref: LeaseRef & { key: string; job: ChildJob }, scope: QueueScope = '*'): Promise<{ jobId: number; created: boolean }> {
    return this.opts.enqueuer.child({ id: ref.id, leaseToken: ref.leaseToken }, ref.key, ref.job, scope);
  }

  /**
   * This control plane as a worker credential for `queues` sees it: dequeue intersected with the
   * queues (403 for others), every write scoped to them, children limited to them too. What the
   * internal routes do per request, as a Transport (the conformance suite runs its cases on it).
   */
  scoped(queues: '*' | string[]): Transport {
    const identity = { subject: 'scoped', queues };
    return {
      dequeue: async (req) => this.dequeue({ ...req, queues: allowedQueues(identity, req.queues) }),
      heartbeat: (items) => this.heartbeat(items, queues),
      complete: (item) => this.complete(item, queues),
      fail: (item) => this.fail(item, queues),
      release: (items) => this.release(items, queues),
      loadSteps: (ref) => this.loadSteps(ref, queues),
      saveStep: (ref) => this.saveStep(ref, queues),
      progress: (ref) => this.progress(ref, queues),
      enqueueChild: async (ref) => {
        allowedQueues(identity, [ref.job.queue]);
        return this.enqueueChild(ref, queues);
      },
    };
  }

  #failReply(o: FailOutcome): FailReply {
    this.#observe(o, o.ok ? o.state : 'failed');
    return o.ok ? { id: o.id, ok: true, state: o.state } : o;
  }

  /**
   * A refused item counts under the state its job was recorded in when its value could not be
   * stored (the write did decide the job), else under its code (stale or foreign: the live holder's
   * claim record stays).
   */
  #observe(o: { id: number; ok: true } | ItemRefusal, outcome: string): void {
    if (o.ok) return this.#durations.outcome(o.id, outcome, false);
    const state = (o.details as { state?: unknown } | undefined)?.state;
    if (typeof state === 'string') this.#durations.outcome(o.id, state, false);
    else this.#durations.outcome(o.id, o.code, true);
  }
}
