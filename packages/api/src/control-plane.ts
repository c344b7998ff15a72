import { DispatchError } from '@pgdispatch/core/errors';
import type { ChildJob, DequeueRequest, FailReply, HeartbeatReply, LeaseOutcome, LeaseRef, Transport } from '@pgdispatch/core/transport';
import type { ClaimedJob, JobError } from '@pgdispatch/core/types';
import type { Sql } from '@pgdispatch/engine/db';
import { jobAssertLease } from '@pgdispatch/engine/queries/job-admin';
import { jobCompleteMany, type CompleteItem } from '@pgdispatch/engine/queries/job-complete';
import { jobEnqueue, jobEnqueueMany, type EnqueueItem, type EnqueueResult } from '@pgdispatch/engine/queries/job-enqueue';
import { jobProgress } from '@pgdispatch/engine/queries/job-events';
import { jobFailMany, type FailItem, type FailOutcome } from '@pgdispatch/engine/queries/job-fail';
import { jobHeartbeatMany } from '@pgdispatch/engine/queries/job-heartbeat';
import { jobReleaseMany } from '@pgdispatch/engine/queries/job-release';
import { jobStepSave, jobStepsLoad } from '@pgdispatch/engine/queries/job-steps';
import { Batcher } from '@pgdispatch/core/batcher';
import type { Dispatcher } from './dispatcher.js';
import type { Metrics } from './metrics.js';

/** One executor (or several sharing a credential and queue set) as seen by this process's dequeues. */
export interface WorkerPresence {
  /** `in-process`: the executor inside this process (role all); `http`: a worker over the internal API. */
  tier: 'in-process' | 'http';
  /** The worker credential's subject (JWT `sub`, `worker-key` for a static key). */
  subject: string;
  queues: '*' | string[];
  /** Epoch ms of the last dequeue's start or end. */
  lastSeenAt: number;
  /** A dequeue long-poll is open right now. */
  waiting: boolean;
}

export interface ControlPlaneOptions {
  sql: Sql;
  dispatcher: Dispatcher;
  metrics: Metrics;
  leaseMs: number;
  maxPayloadBytes: number;
  /** How long a dequeue counts as a worker listening on its queues, in ms (default 60000). */
  presenceMs?: number;
}

/**
 * Every execution-state write goes through here: the internal HTTP routes call it for remote
 * workers and, in role all, it *is* the in-process Transport. Results arriving together are
 * written by one statement (Batcher); claim-to-result durations feed the metrics.
 */
export class ControlPlane implements Transport {
  private readonly completions: Batcher<CompleteItem, LeaseOutcome>;
  private readonly failures: Batcher<FailItem, FailOutcome>;
  /** claim time and queue of jobs claimed through this process, for the duration histogram. */
  private readonly claimedAt = new Map<number, { at: number; queue: string }>();
  /** (tier, credential, queue set) → last time an executor asked for work on it. */
  private readonly presence = new Map<string, WorkerPresence>();

  constructor(private readonly opts: ControlPlaneOptions) {
    this.completions = new Batcher((items) => jobCompleteMany(opts.sql, { items }));
    this.failures = new Batcher((items) => jobFailMany(opts.sql, { items }));
  }

  async enqueue(items: EnqueueItem[]): Promise<EnqueueResult[]> {
    const results = await jobEnqueueMany(this.opts.sql, { items, maxPayloadBytes: this.opts.maxPayloadBytes });
    for (const r of results) if (r.created) this.opts.metrics.enqueued.inc({ queue: r.job.queue });
    return results;
  }

  /** `who` says where the request came from: the internal HTTP route passes the credential's subject. */
  async dequeue(req: DequeueRequest, who: { tier: WorkerPresence['tier']; subject: string } = { tier: 'in-process', subject: 'in-process' }): Promise<ClaimedJob[]> {
    const started = Date.now();
    const queues = req.queues === '*' ? '*' : [...req.queues].sort();
    const key = `${who.tier}|${who.subject}|${queues === '*' ? '*' : queues.join(',')}`;
    const seen: WorkerPresence = { ...who, queues, lastSeenAt: started, waiting: true };
    this.presence.set(key, seen);
    if (this.presence.size > 1000) this.forgetOldPresence(); // bounded: one entry per credential × queue set
    const jobs = await this.opts.dispatcher.request(req).finally(() => {
      seen.lastSeenAt = Date.now();
      seen.waiting = false;
    });
    this.opts.metrics.dequeueWait.observe((Date.now() - started) / 1000);
    const now = Date.now();
    if (this.claimedAt.size > 100_000) this.claimedAt.clear(); // only feeds a histogram: bound it
    for (const j of jobs) this.claimedAt.set(j.id, { at: now, queue: j.queue });
    return jobs;
  }

  /** Releases jobs that were claimed for a request whose HTTP client went away. */
  async undeliverable(jobs: ClaimedJob[]): Promise<void> {
    for (const j of jobs) this.claimedAt.delete(j.id);
    await this.opts.dispatcher.release(jobs);
  }

  /** Queues among `queues` on which no executor has asked for work within the presence window. */
  unattendedQueues(queues: string[]): string[] {
    const live = this.workers();
    if (live.some((w) => w.queues === '*')) return [];
    const covered = new Set(live.flatMap((w) => w.queues));
    return queues.filter((q) => !covered.has(q));
  }

  /** Executors that asked this process for work within the presence window, newest first. */
  workers(): WorkerPresence[] {
    const horizon = Date.now() - this.presenceMs;
    return [...this.presence.values()].filter((p) => p.waiting || p.lastSeenAt >= horizon).map((p) => ({ ...p })).sort((a, b) => b.lastSeenAt - a.lastSeenAt);
  }

  /** The presence window in ms: how long a dequeue counts as an executor listening. */
  get presenceMs(): number {
    return this.opts.presenceMs ?? 60_000;
  }

  private forgetOldPresence(): void {
    const horizon = Date.now() - this.presenceMs;
    for (const [k, p] of this.presence) if (!p.waiting && p.lastSeenAt < horizon) this.presence.delete(k);
  }

  async heartbeat(items: LeaseRef[]): Promise<HeartbeatReply[]> {
    const out = await jobHeartbeatMany(this.opts.sql, { items, leaseMs: this.opts.leaseMs });
    return out.map((o) => (o.ok ? { id: o.id, ok: true, cancelRequested: o.cancelRequested } : o));
  }

  async complete(item: LeaseRef & { result?: unknown }): Promise<LeaseOutcome> {
    this.checkResultSize(item.result);
    const out = await this.completions.push({ id: item.id, leaseToken: item.leaseToken, result: item.result });
    this.observe(item.id, out.ok ? 'succeeded' : 'lease_lost');
    return out;
  }

  /** Completions that arrived together over HTTP: one statement, reported per item. */
  async completeMany(items: (LeaseRef & { result?: unknown })[]): Promise<LeaseOutcome[]> {
    for (const item of items) this.checkResultSize(item.result);
    const out = await jobCompleteMany(this.opts.sql, { items });
    for (const o of out) this.observe(o.id, o.ok ? 'succeeded' : 'lease_lost');
    return out;
  }

  /** Failures that arrived together over HTTP: one transaction, reported per item. */
  async failMany(items: (LeaseRef & { error: JobError; retryable: boolean })[]): Promise<FailReply[]> {
    const out = await jobFailMany(this.opts.sql, { items });
    return out.map((o) => {
      this.observe(o.id, o.ok ? o.state : 'lease_lost');
      return o.ok ? { id: o.id, ok: true, state: o.state } : o;
    });
  }

  private checkResultSize(result: unknown): void {
    if (result === undefined) return;
    const bytes = Buffer.byteLength(JSON.stringify(result) ?? '');
    if (bytes > this.opts.maxPayloadBytes) {
      throw new DispatchError('payload_too_large', `result is ${bytes} bytes, the limit is ${this.opts.maxPayloadBytes}`, { details: { bytes } });
    }
  }

  async fail(item: LeaseRef & { error: JobError; retryable: boolean }): Promise<FailReply> {
    const out = await this.failures.push({ id: item.id, leaseToken: item.leaseToken, error: item.error, retryable: item.retryable });
    this.observe(item.id, out.ok ? out.state : 'lease_lost');
    return out.ok ? { id: out.id, ok: true, state: out.state } : out;
  }

  async release(items: LeaseRef[]): Promise<LeaseOutcome[]> {
    for (const i of items) this.claimedAt.delete(i.id);
    const out = await jobReleaseMany(this.opts.sql, { items });
    // Worker-initiated releases; the dispatcher's own (vanished requesters) count via onRelease.
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

  /** Child jobs are idempotent per (parent, key): a retried parent gets the same child back. */
  async enqueueChild(ref: LeaseRef & { key: string; job: ChildJob }): Promise<{ jobId: number; created: boolean }> {
    return this.opts.sql.begin(async (tx) => {
      await jobAssertLease(tx, ref);
      const { job, created } = await jobEnqueue(tx, {
        ...ref.job,
        parentId: ref.id,
        idempotencyKey: `child:${ref.id}:${ref.key}`,
        maxPayloadBytes: this.opts.maxPayloadBytes,
      });
      if (created) this.opts.metrics.enqueued.inc({ queue: job.queue });
      return { jobId: job.id, created };
    }) as Promise<{ jobId: number; created: boolean }>;
  }

  private observe(id: number, outcome: string): void {
    const c = this.claimedAt.get(id);
    if (outcome === 'lease_lost') {
      // A stale holder's write: the live holder's claim record stays for its own outcome.
      this.opts.metrics.completed.inc({ queue: c?.queue ?? 'unknown', outcome });
      return;
    }
    this.claimedAt.delete(id);
    const queue = c?.queue ?? 'unknown';
    this.opts.metrics.completed.inc({ queue, outcome });
    if (c) this.opts.metrics.runDuration.observe({ queue }, (Date.now() - c.at) / 1000);
  }
}
