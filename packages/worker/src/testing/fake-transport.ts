/**
 * An in-memory Transport for runtime unit tests: a small model of the control plane (a job table
 * with the state machine of docs/architecture.md §3, fenced by lease token on every write) so the
 * runtime's own logic — concurrency, heartbeats, shutdown — can be tested without a database.
 * It passes the same Transport conformance suite as the real control plane
 * (test/conformance/), which is what entitles runtime tests to trust it.
 */
import { randomUUID } from 'node:crypto';
import { DispatchError, leaseLost } from '@pgdispatch/core/errors';
import { leaseLostItem, type ChildJob, type DequeueRequest, type FailReply, type HeartbeatReply, type LeaseOutcome, type LeaseRef, type Transport } from '@pgdispatch/core/transport';
import type { ClaimedJob, Job, JobError } from '@pgdispatch/core/types';

export interface FakeJobInput {
  /** Reusing the id of a known job puts that job back in the queue (a retry, as the reaper would). */
  id?: number;
  task: string;
  payload?: unknown;
  queue?: string;
  /** The attempt its next claim will have (default 1). */
  attempt?: number;
  maxAttempts?: number;
}

/** One job as the fake control plane records it: the fields of a Job it models, plus its lease token. */
export interface FakeJob extends Pick<Job, 'id' | 'queue' | 'task' | 'payload' | 'state' | 'attempt' | 'maxAttempts' | 'leaseExpiresAt' | 'cancelRequested' | 'result' | 'lastError' | 'parentId'> {
  leaseToken: string | null;
  /** Claimable from then on (queued, retry_waiting), in epoch ms. */
  runAt: number;
}

export interface FakeTransportOptions {
  /** Lease length given by claims and heartbeats, in ms (default 30000). */
  leaseMs?: number;
  /** Delay before a retryable failure is claimable again, in ms (default 60000: tests re-queue explicitly). */
  retryDelayMs?: number;
  /** Hand out jobs of any task whatever the dequeue declares, like an api that predates task routing. */
  ignoreTasks?: boolean;
}

export class FakeTransport implements Transport {
  /** Results of jobs completed through this transport, by job id. */
  readonly completed = new Map<number, unknown>();
  /** Failures recorded through this transport, by job id (the latest one). */
  readonly failed = new Map<number, { error: JobError; retryable: boolean }>();
  /** Ids of jobs released, in order. */
  readonly released: number[] = [];
  /** Checkpointed steps by job id; tests may seed them (as if an earlier attempt saved them). */
  readonly steps = new Map<number, Record<string, unknown>>();
  readonly children: { parentId: number; key: string; job: ChildJob; id: number }[] = [];
  readonly progressEvents: { id: number; data: unknown }[] = [];
  /** Every dequeue request as received. */
  readonly dequeueRequests: { max: number; queues: '*' | string[]; tasks: '*' | string[] | undefined }[] = [];
  heartbeats = 0;
  loadStepsCalls = 0;
  /** Make the next n dequeues throw. */
  failNextDequeues = 0;
  readonly #jobs = new Map<number, FakeJob>();
  readonly #waiters = new Set<() => void>();
  readonly #leaseMs: number;
  readonly #retryDelayMs: number;
  readonly #ignoreTasks: boolean;

  constructor(opts: FakeTransportOptions = {}) {
    this.#leaseMs = opts.leaseMs ?? 30_000;
    this.#retryDelayMs = opts.retryDelayMs ?? 60_000;
    this.#ignoreTasks = opts.ignoreTasks ?? false;
  }

  /** Puts jobs in their queues, claimable at once. */
  push(...inputs: FakeJobInput[]): FakeJob[] {
    const jobs = inputs.map((i) => {
      const id = i.id ?? this.#nextId();
      const job: FakeJob = {
        id, queue: i.queue ?? 'default', task: i.task, payload: i.payload ?? {}, state: 'queued', attempt: (i.attempt ?? 1) - 1,
        maxAttempts: i.maxAttempts ?? 5, leaseToken: null, leaseExpiresAt: null, runAt: 0, cancelRequested: false, result: null, lastError: null,
        parentId: this.#jobs.get(id)?.parentId ?? null,
      };
      this.#jobs.set(id, job);
      return job;
    });
    this.#wake();
    return jobs;
  }

  /** Pushes jobs and claims them at once: the ClaimedJob a handler's context is built from. */
  claimNow(...inputs: FakeJobInput[]): ClaimedJob[] {
    return this.push(...inputs).map((j) => this.#claim(j));
  }

  /** The job as this fake control plane records it (a copy). */
  job(id: number): FakeJob | undefined {
    const j = this.#jobs.get(id);
    return j && { ...j };
  }

  /** The public API's cancel: a waiting job ends cancelled, a running one gets cancel requested. */
  cancel(id: number): void {
    const j = this.#get(id);
    if (j.state === 'running') j.cancelRequested = true;
    else if (j.state === 'queued' || j.state === 'retry_waiting') this.#finish(j, 'cancelled');
    else throw new DispatchError('invalid_state', `job ${id} is ${j.state} and cannot be cancelled`, { details: { state: j.state } });
  }

  /** The lease ran out and the reaper took the job back (a spent attempt), as after a worker crash. */
  expireLease(id: number): void {
    const j = this.#get(id);
    if (j.state !== 'running') return;
    j.lastError = { message: 'lease expired', name: 'LeaseExpired', retryable: true };
    if (j.cancelRequested) this.#finish(j, 'cancelled');
    else if (j.attempt >= j.maxAttempts) this.#finish(j, 'failed');
    else this.#wait(j, 'retry_waiting', 0);
    this.#wake();
  }

  /** The lease was lost to another holder (expired and re-claimed elsewhere): this holder's token is stale. */
  loseLease(id: number): void {
    const j = this.#get(id);
    if (j.state === 'running') j.leaseToken = randomUUID();
  }

  async dequeue(req: DequeueRequest): Promise<ClaimedJob[]> {
    this.dequeueRequests.push({ max: req.max, queues: req.queues, tasks: req.tasks });
    if (this.failNextDequeues > 0) {
      this.failNextDequeues--;
      throw new Error('dequeue failed (fake)');
    }
    const until = Date.now() + req.waitMs;
    for (;;) {
      if (req.signal?.aborted) return [];
      const tasks = this.#ignoreTasks ? '*' : (req.tasks ?? '*');
      const ready = [...this.#jobs.values()].filter((j) => this.#claimable(j, req.queues) && (tasks === '*' || tasks.includes(j.task))).slice(0, req.max);
      if (ready.length > 0 || Date.now() >= until) return ready.map((j) => this.#claim(j));
      await this.#nextChange(until - Date.now(), req.signal);
    }
  }

  async heartbeat(items: LeaseRef[]): Promise<HeartbeatReply[]> {
    this.heartbeats++;
    return items.map((i) => {
      const j = this.#held(i);
      if (!j) return leaseLostItem(i.id);
      j.leaseExpiresAt = new Date(Date.now() + this.#leaseMs);
      return { id: i.id, ok: true, cancelRequested: j.cancelRequested };
    });
  }

  async complete(item: LeaseRef & { result?: unknown }): Promise<LeaseOutcome> {
    const j = this.#held(item);
    if (!j) return leaseLostItem(item.id);
    j.result = item.result ?? null;
    this.#finish(j, 'succeeded');
    this.completed.set(item.id, item.result);
    return { id: item.id, ok: true };
  }

  async fail(item: LeaseRef & { error: JobError; retryable: boolean }): Promise<FailReply> {
    const j = this.#held(item);
    if (!j) return leaseLostItem(item.id);
    j.lastError = { ...item.error, retryable: item.retryable };
    if (j.cancelRequested) this.#finish(j, 'cancelled');
    else if (item.retryable && j.attempt < j.maxAttempts) this.#wait(j, 'retry_waiting', this.#retryDelayMs);
    else this.#finish(j, 'failed');
    this.failed.set(item.id, { error: item.error, retryable: item.retryable });
    return { id: item.id, ok: true, state: j.state };
  }

  async release(items: LeaseRef[]): Promise<LeaseOutcome[]> {
    const out = items.map((i): LeaseOutcome => {
      const j = this.#held(i);
      if (!j) return leaseLostItem(i.id);
      j.attempt = Math.max(0, j.attempt - 1);
      if (j.cancelRequested) this.#finish(j, 'cancelled');
      else this.#wait(j, 'queued', 0);
      this.released.push(i.id);
      return { id: i.id, ok: true };
    });
    this.#wake();
    return out;
  }

  async loadSteps(ref: LeaseRef): Promise<Record<string, unknown>> {
    this.#assertHeld(ref);
    this.loadStepsCalls++;
    return { ...this.steps.get(ref.id) };
  }

  async saveStep(ref: LeaseRef & { name: string; result: unknown }): Promise<void> {
    this.#assertHeld(ref);
    const steps = this.steps.get(ref.id) ?? {};
    if (!Object.hasOwn(steps, ref.name)) steps[ref.name] = ref.result; // the first result recorded wins
    this.steps.set(ref.id, steps);
  }

  async progress(ref: LeaseRef & { data: unknown }): Promise<void> {
    this.#assertHeld(ref);
    this.progressEvents.push({ id: ref.id, data: ref.data });
  }

  async enqueueChild(ref: LeaseRef & { key: string; job: ChildJob }): Promise<{ jobId: number; created: boolean }> {
    this.#assertHeld(ref);
    const existing = this.children.find((c) => c.parentId === ref.id && c.key === ref.key);
    if (existing) return { jobId: existing.id, created: false };
    const [child] = this.push({ queue: ref.job.queue, task: ref.job.task, payload: ref.job.payload ?? {}, ...(ref.job.maxAttempts !== undefined && { maxAttempts: ref.job.maxAttempts }) });
    child!.parentId = ref.id;
    child!.runAt = Date.now() + (ref.job.delayMs ?? 0);
    this.children.push({ parentId: ref.id, key: ref.key, job: ref.job, id: child!.id });
    return { jobId: child!.id, created: true };
  }

  #nextId(): number {
    let max = 0;
    for (const id of this.#jobs.keys()) max = Math.max(max, id);
    return max + 1;
  }

  #get(id: number): FakeJob {
    const j = this.#jobs.get(id);
    if (!j) throw new DispatchError('not_found', `job ${id} not found`, { details: { job: id } });
    return j;
  }

  #claimable(j: FakeJob, queues: '*' | string[]): boolean {
    return (j.state === 'queued' || j.state === 'retry_waiting') && j.runAt <= Date.now() && (queues === '*' || queues.includes(j.queue));
  }

  #claim(j: FakeJob): ClaimedJob {
    j.state = 'running';
    j.attempt++;
    j.leaseToken = randomUUID();
    j.leaseExpiresAt = new Date(Date.now() + this.#leaseMs);
    return { id: j.id, queue: j.queue, task: j.task, payload: j.payload, attempt: j.attempt, maxAttempts: j.maxAttempts, leaseToken: j.leaseToken, leaseExpiresAt: j.leaseExpiresAt };
  }

  /** The fencing rule: the job is running under exactly this token. */
  #held(ref: LeaseRef): FakeJob | undefined {
    const j = this.#jobs.get(ref.id);
    return j && j.state === 'running' && j.leaseToken === ref.leaseToken ? j : undefined;
  }

  #assertHeld(ref: LeaseRef): void {
    if (!this.#held(ref)) throw leaseLost(ref.id);
  }

  #finish(j: FakeJob, state: 'succeeded' | 'failed' | 'cancelled'): void {
    j.state = state;
    j.leaseToken = null;
    j.leaseExpiresAt = null;
  }

  #wait(j: FakeJob, state: 'queued' | 'retry_waiting', delayMs: number): void {
    j.state = state;
    j.leaseToken = null;
    j.leaseExpiresAt = null;
    j.runAt = Date.now() + delayMs;
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Resolves when jobs change, `ms` passes or `signal` aborts. */
  #nextChange(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.#waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
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
