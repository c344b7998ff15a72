import { Batcher } from '@pgdispatch/core/batcher';
import { DispatchError } from '@pgdispatch/core/errors';
import type { ChildJob, DequeueRequest, FailReply, HeartbeatReply, LeaseOutcome, LeaseRef, Transport } from '@pgdispatch/core/transport';
import type { ClaimedJob, JobError } from '@pgdispatch/core/types';
import type { Sql } from '@pgdispatch/engine/db';
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
import type { ExecutorIdentity, WorkerPresence } from './worker-presence.js';

export interface ControlPlaneOptions {
  sql: Sql;
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
 */
export class ControlPlane implements Transport {
  readonly #completions: Batcher<CompleteItem, LeaseOutcome>;
  readonly #failures: Batcher<FailItem, FailOutcome>;
  readonly #durations: RunDurations;

  constructor(private readonly opts: ControlPlaneOptions) {
    this.#completions = new Batcher((items) => jobCompleteMany(opts.sql, { items }));
    this.#failures = new Batcher((items) => jobFailMany(opts.sql, { items }));
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

  async heartbeat(items: LeaseRef[]): Promise<HeartbeatReply[]> {
    const out = await jobHeartbeatMany(this.opts.sql, { items, leaseMs: this.opts.leaseMs });
    return out.map((o) => (o.ok ? { id: o.id, ok: true, cancelRequested: o.cancelRequested } : o));
  }

  async complete(item: LeaseRef & { result?: unknown }): Promise<LeaseOutcome> {
    this.#checkResultSize(item.result);
    const out = await this.#completions.push({ id: item.id, leaseToken: item.leaseToken, result: item.result });
    this.#observe(out, 'succeeded');
    return out;
  }

  /** Completions that arrived together over HTTP: one statement, reported per item. */
  async completeMany(items: (LeaseRef & { result?: unknown })[]): Promise<LeaseOutcome[]> {
    for (const item of items) this.#checkResultSize(item.result);
    const out = await jobCompleteMany(this.opts.sql, { items });
    for (const o of out) this.#observe(o, 'succeeded');
    return out;
  }

  async fail(item: LeaseRef & { error: JobError; retryable: boolean }): Promise<FailReply> {
    const out = await this.#failures.push({ id: item.id, leaseToken: item.leaseToken, error: item.error, retryable: item.retryable });
    return this.#failReply(out);
  }

  /** Failures that arrived together over HTTP: one transaction, reported per item. */
  async failMany(items: (LeaseRef & { error: JobError; retryable: boolean })[]): Promise<FailReply[]> {
    const out = await jobFailMany(this.opts.sql, { items });
    return out.map((o) => this.#failReply(o));
  }

  /** Worker-initiated releases (graceful shutdown); the dispatcher counts its own. */
  async release(items: LeaseRef[]): Promise<LeaseOutcome[]> {
    this.#durations.forget(items.map((i) => i.id));
    const out = await jobReleaseMany(this.opts.sql, { items });
    this.opts.metrics.released.inc(out.filter((o) => o.ok).length);
    return out;
  }

  async loadSteps(ref: LeaseRef): Promise<Record<string, unknown>> {
    await jobAssertLease(this.opts.sql, ref);
    return jobStepsLoad(this.opts.sql, { id: ref.id });
  }

  async saveStep(ref: LeaseRef & { name: string; result: unknown }): Promise<void> {
    await jobStepSave(this.opts.sql, ref);
  }

  async progress(ref: LeaseRef & { data: unknown }): Promise<void> {
    await jobProgress(this.opts.sql, ref);
  }

  async enqueueChild(ref: LeaseRef & { key: string; job: ChildJob }): Promise<{ jobId: number; created: boolean }> {
    return this.opts.enqueuer.child({ id: ref.id, leaseToken: ref.leaseToken }, ref.key, ref.job);
  }

  #checkResultSize(result: unknown): void {
    if (result === undefined) return;
    const bytes = Buffer.byteLength(JSON.stringify(result) ?? '');
    if (bytes > this.opts.maxPayloadBytes) {
      throw new DispatchError('payload_too_large', `result is ${bytes} bytes, the limit is ${this.opts.maxPayloadBytes}`, { details: { bytes } });
    }
  }

  #failReply(o: FailOutcome): FailReply {
    this.#observe(o, o.ok ? o.state : 'failed');
    return o.ok ? { id: o.id, ok: true, state: o.state } : o;
  }

  #observe(o: { id: number; ok: boolean; code?: string }, outcome: string): void {
    if (o.ok) this.#durations.outcome(o.id, outcome, false);
    else this.#durations.outcome(o.id, o.code ?? 'refused', true);
  }
}
