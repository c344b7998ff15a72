/**
 * An in-memory Transport for runtime unit tests. It models leases just enough to test the
 * runtime's own logic (concurrency, heartbeats, shutdown); it says nothing about the HTTP layer
 * or the real control plane, which have their own tests.
 */
import { randomUUID } from 'node:crypto';
import { leaseLostItem, type ChildJob, type DequeueRequest, type FailReply, type HeartbeatReply, type LeaseOutcome, type LeaseRef, type Transport } from '@pgdispatch/core/transport';
import type { ClaimedJob, JobError } from '@pgdispatch/core/types';

export interface FakeJobInput {
  id?: number;
  task: string;
  payload?: unknown;
  queue?: string;
  attempt?: number;
  maxAttempts?: number;
}

export class FakeTransport implements Transport {
  /** Jobs waiting to be dequeued. */
  readonly waiting: ClaimedJob[] = [];
  /** Lease token per held job id. */
  readonly leases = new Map<number, string>();
  readonly completed = new Map<number, unknown>();
  readonly failed = new Map<number, { error: JobError; retryable: boolean }>();
  readonly released: number[] = [];
  readonly steps = new Map<number, Record<string, unknown>>();
  readonly children: { parentId: number; key: string; job: ChildJob }[] = [];
  readonly progressEvents: { id: number; data: unknown }[] = [];
  readonly dequeueRequests: { max: number; queues: '*' | string[] }[] = [];
  readonly cancelRequested = new Set<number>();
  heartbeats = 0;
  loadStepsCalls = 0;
  /** Make the next n dequeues throw. */
  failNextDequeues = 0;
  #nextId = 1;
  #wake: (() => void) | undefined;

  push(...inputs: FakeJobInput[]): ClaimedJob[] {
    const jobs = inputs.map((i) => ({
      id: i.id ?? this.#nextId++,
      queue: i.queue ?? 'default',
      task: i.task,
      payload: i.payload ?? {},
      attempt: i.attempt ?? 1,
      maxAttempts: i.maxAttempts ?? 5,
      leaseToken: randomUUID(),
      leaseExpiresAt: new Date(Date.now() + 30_000),
    }));
    this.waiting.push(...jobs);
    this.#wake?.();
    return jobs;
  }

  /** Revokes a held lease, as if it expired and another worker claimed the job. */
  loseLease(id: number): void {
    this.leases.delete(id);
  }

  async dequeue(req: DequeueRequest): Promise<ClaimedJob[]> {
    this.dequeueRequests.push({ max: req.max, queues: req.queues });
    if (this.failNextDequeues > 0) {
      this.failNextDequeues--;
      throw new Error('dequeue failed (fake)');
    }
    if (this.waiting.length === 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, req.waitMs);
        function done() {
          clearTimeout(timer);
          req.signal?.removeEventListener('abort', done);
          resolve();
        }
        this.#wake = done;
        req.signal?.addEventListener('abort', done, { once: true });
      });
      this.#wake = undefined;
    }
    if (req.signal?.aborted) return [];
    const jobs = this.waiting.splice(0, req.max);
    for (const j of jobs) this.leases.set(j.id, j.leaseToken);
    return jobs;
  }

  async heartbeat(items: LeaseRef[]): Promise<HeartbeatReply[]> {
    this.heartbeats++;
    return items.map((i) =>
      this.#holds(i) ? { id: i.id, ok: true, cancelRequested: this.cancelRequested.has(i.id) } : leaseLostItem(i.id),
    );
  }

  async complete(item: LeaseRef & { result?: unknown }): Promise<LeaseOutcome> {
    if (!this.#holds(item)) return leaseLostItem(item.id);
    this.leases.delete(item.id);
    this.completed.set(item.id, item.result);
    return { id: item.id, ok: true };
  }

  async fail(item: LeaseRef & { error: JobError; retryable: boolean }): Promise<FailReply> {
    if (!this.#holds(item)) return leaseLostItem(item.id);
    this.leases.delete(item.id);
    this.failed.set(item.id, { error: item.error, retryable: item.retryable });
    return { id: item.id, ok: true, state: this.cancelRequested.has(item.id) ? 'cancelled' : item.retryable ? 'retry_waiting' : 'failed' };
  }

  async release(items: LeaseRef[]): Promise<LeaseOutcome[]> {
    return items.map((i) => {
      if (!this.#holds(i)) return leaseLostItem(i.id);
      this.leases.delete(i.id);
      this.released.push(i.id);
      return { id: i.id, ok: true };
    });
  }

  async loadSteps(ref: LeaseRef): Promise<Record<string, unknown>> {
    this.loadStepsCalls++;
    return { ...this.steps.get(ref.id) };
  }

  async saveStep(ref: LeaseRef & { name: string; result: unknown }): Promise<void> {
    const steps = this.steps.get(ref.id) ?? {};
    steps[ref.name] ??= ref.result;
    this.steps.set(ref.id, steps);
  }

  async progress(ref: LeaseRef & { data: unknown }): Promise<void> {
    this.progressEvents.push({ id: ref.id, data: ref.data });
  }

  async enqueueChild(ref: LeaseRef & { key: string; job: ChildJob }): Promise<{ jobId: number; created: boolean }> {
    const existing = this.children.findIndex((c) => c.parentId === ref.id && c.key === ref.key);
    if (existing >= 0) return { jobId: 10_000 + existing, created: false };
    this.children.push({ parentId: ref.id, key: ref.key, job: ref.job });
    return { jobId: 10_000 + this.children.length - 1, created: true };
  }

  #holds(ref: LeaseRef): boolean {
    return this.leases.get(ref.id) === ref.leaseToken;
  }
}

/** Polls `cond` every 5 ms until true, or throws after `timeoutMs` (default 5000). */
export async function waitFor(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
