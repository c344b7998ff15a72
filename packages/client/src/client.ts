/**
 * Typed HTTP client for pgdispatch's public API (`/v1`). Used by the CLI, the tests and anyone
 * enqueueing from another service. Requests go through `requestJson` (retry-fetch.ts): network
 * errors and 503 are retried with backoff + jitter, 4xx never; API errors throw DispatchError
 * with the server's code.
 *
 * Enqueue is retried after an ambiguous network error (the request may have been applied) only
 * when it carries an `idempotencyKey`, so a retry can never create a second job.
 */
import { DispatchError } from '@pgdispatch/core/errors';
import type { JobError, JobState, QueuePolicy, Job } from '@pgdispatch/core/types';
import { readEventStream, type WireJobEvent } from './events.js';
import type { Schedule, ScheduleFields } from '@pgdispatch/core/schedule';
import type { TaskPayload, TaskSpec } from '@pgdispatch/core/task-spec';
import { requestJson } from './retry-fetch.js';
import { checkPayload, isTaskSpec } from './task.js';
import type { FetchLike, JsonRequest, RetryOptions } from './retry-fetch.js';

export interface PgDispatchClientOptions {
  /** Base URL of an api or all pod, e.g. `http://localhost:8080` (a path prefix is kept). */
  baseUrl: string;
  /** Public API key, sent as `Authorization: Bearer <apiKey>`; omit when auth is off. */
  apiKey?: string;
  /** Custom fetch (default: `httpFetch`, node:http with keep-alive agents; see http-fetch.ts). */
  fetch?: FetchLike;
  /** Retry policy (defaults: see DEFAULT_RETRY). */
  retry?: Partial<RetryOptions>;
  /** Per-request timeout in ms (default 30000). */
  timeoutMs?: number;
}

export interface EnqueueInput {
  task: string;
  payload?: unknown;
  /** Lower runs first (default 0; -32768..32767). */
  priority?: number;
  /** Absolute start time (a Date or an ISO string). Give runAt or delayMs, not both: the server refuses both together (400 invalid_request). */
  runAt?: Date | string;
  /** Delay from the server's now, in ms (default 0). */
  delayMs?: number;
  /** Default: the queue's defaultMaxAttempts. */
  maxAttempts?: number;
  /** Per queue: enqueueing the same key again returns the first job (created: false). */
  idempotencyKey?: string;
  /** Per queue, unique while active: returns the queued/running job with this key; free once it finished. */
  uniqueKey?: string;
}

export interface BulkFilter {
  queue?: string;
  state?: JobState;
  task?: string;
  createdBefore?: Date | string;
  createdAfter?: Date | string;
  /** Most jobs one call touches (server default 1000, at most 10000). */
  limit?: number;
}

/** The plain form of `enqueue`: any task by name, on a named queue. */
export type EnqueueJob = EnqueueInput & { queue: string };

/** What a typed `enqueue(task, payload, options)` may add: everything but the task and payload. */
export type TaskEnqueueOptions = Omit<EnqueueInput, 'task' | 'payload'> & {
  /** Default: the task's `queue`. */
  queue?: string;
  signal?: AbortSignal;
};

export interface EnqueueResult {
  job: Job;
  /** false when the idempotency key matched an existing job. */
  created: boolean;
}

export interface ListJobsFilter {
  queue?: string;
  state?: JobState;
  task?: string;
  /** `nextCursor` of the previous page. */
  cursor?: string | number;
  /** Page size (server default 50, at most 500). */
  limit?: number;
}

export interface JobPage {
  jobs: Job[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | number | null;
}

export type QueuePolicyPatch = Partial<Pick<QueuePolicy, 'concurrencyLimit' | 'defaultMaxAttempts' | 'backoffBaseMs' | 'backoffMaxMs' | 'retentionSeconds' | 'deadLetterQueue' | 'rateLimit' | 'rateIntervalMs'>>;

export interface QueueStats {
  name: string;
  paused: boolean;
  counts: Record<JobState, number>;
  /** Seconds the oldest runnable waiting job has waited past its runAt (0 when none). */
  oldestWaitingSeconds: number;
}

/** POST /v1/schedules body: a cron expression (5 fields, or 6 with seconds first) read in `timeZone`. */
export interface ScheduleInput extends ScheduleFields {
  name: string;
}

/** PATCH /v1/schedules/:name body: only the fields given change. */
export type SchedulePatch = Partial<Omit<ScheduleInput, 'name'>>;

type WireSchedule = Omit<Schedule, 'nextRunAt' | 'lastTickAt' | 'createdAt' | 'updatedAt'> & {
  nextRunAt: string;
  lastTickAt: string | null;
  createdAt: string;
  updatedAt: string;
};

/** Converts a wire schedule into core's Schedule shape (Date objects). */
export function scheduleFromWire(w: WireSchedule): Schedule {
  return {
    ...w,
    nextRunAt: new Date(w.nextRunAt),
    lastTickAt: w.lastTickAt === null ? null : new Date(w.lastTickAt),
    createdAt: new Date(w.createdAt),
    updatedAt: new Date(w.updatedAt),
  };
}

/** A job as it travels over JSON: dates are ISO strings. */
type WireJob = Omit<Job, 'runAt' | 'leaseExpiresAt' | 'createdAt' | 'updatedAt' | 'finishedAt' | 'lastError'> & {
  runAt: string;
  leaseExpiresAt: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  lastError: JobError | null;
};

/** Converts a wire job into the engine's Job shape (Date objects). */
export function jobFromWire(w: WireJob): Job {
  return {
    ...w,
    runAt: new Date(w.runAt),
    leaseExpiresAt: w.leaseExpiresAt === null ? null : new Date(w.leaseExpiresAt),
    createdAt: new Date(w.createdAt),
    updatedAt: new Date(w.updatedAt),
    finishedAt: w.finishedAt === null ? null : new Date(w.finishedAt),
  };
}

export class PgDispatchClient {
  readonly #base: string;
  readonly #opts: PgDispatchClientOptions;

  constructor(opts: PgDispatchClientOptions) {
    this.#base = opts.baseUrl.replace(/\/+$/, '');
    this.#opts = opts;
  }

  /**
   * POST /v1/queues/:queue/jobs — 201 created, or 200 with the existing job for a known idempotency key.
   *
   * - `enqueue(task, payload, options?)`: `task` is a definition (`defineTask` from this package
   *   or from `@pgdispatch/worker`); the payload is type-checked against its zod schema and
   *   validated before it is sent (a mismatch throws `invalid_request` with the issues). The queue
   *   is `options.queue`, else the task's `queue`.
   * - `enqueue({ queue, task: 'name', payload, … })`: any task by name, untyped.
   * - `enqueue(queue, { task: 'name', payload, … })`: the same, queue first.
   */
  enqueue<T extends TaskSpec>(task: T, payload: TaskPayload<T>, options?: TaskEnqueueOptions): Promise<EnqueueResult>;
  enqueue(job: EnqueueJob, opts?: { signal?: AbortSignal }): Promise<EnqueueResult>;
  enqueue(queue: string, input: EnqueueInput, opts?: { signal?: AbortSignal }): Promise<EnqueueResult>;
  async enqueue(first: TaskSpec | EnqueueJob | string, second?: unknown, third?: TaskEnqueueOptions | { signal?: AbortSignal }): Promise<EnqueueResult> {
    if (typeof first === 'string') return this.#enqueue(first, second as EnqueueInput, third ?? {});
    if (isTaskSpec(first) && !('task' in first)) {
      const { queue, signal, ...rest } = (third ?? {}) as TaskEnqueueOptions;
      const target = queue ?? first.queue;
      if (target === undefined) throw new DispatchError('invalid_request', `task ${first.name} names no queue: define it with one or pass { queue }`);
      await checkPayload(first, second);
      return this.#enqueue(target, { ...rest, task: first.name, payload: second }, signal ? { signal } : {});
    }
    const { queue, ...input } = first as EnqueueJob;
    return this.#enqueue(queue, input, (second ?? {}) as { signal?: AbortSignal });
  }

  async #enqueue(queue: string, input: EnqueueInput, opts: { signal?: AbortSignal }): Promise<EnqueueResult> {
    const body = await this.#send<{ job: WireJob; created: boolean }>('POST', `/v1/queues/${seg(queue)}/jobs`, {
      body: enqueueBody(input),
      idempotent: input.idempotencyKey !== undefined,
      signal: opts.signal,
    });
    return { job: jobFromWire(body.job), created: body.created };
  }

  /**
   * POST /v1/queues/:queue/jobs/batch — one result per input, in order. Retried after an
   * ambiguous network error only when every job carries an idempotencyKey.
   */
  async enqueueBatch(queue: string, jobs: EnqueueInput[], opts: { signal?: AbortSignal } = {}): Promise<EnqueueResult[]> {
    const body = await this.#send<{ results: { job: WireJob; created: boolean }[] }>('POST', `/v1/queues/${seg(queue)}/jobs/batch`, {
      body: { jobs: jobs.map(enqueueBody) },
      idempotent: jobs.every((j) => j.idempotencyKey !== undefined),
      signal: opts.signal,
    });
    return body.results.map((r) => ({ job: jobFromWire(r.job), created: r.created }));
  }

  /**
   * POST /v1/queues/:queue/jobs/batch?return=ids — like enqueueBatch, answering only each job's id
   * and `created`: for bulk loads, where the api then reads and sends far less per job.
   */
  async enqueueBatchIds(queue: string, jobs: EnqueueInput[], opts: { signal?: AbortSignal } = {}): Promise<{ id: number; created: boolean }[]> {
    const body = await this.#send<{ results: { id: number; created: boolean }[] }>('POST', `/v1/queues/${seg(queue)}/jobs/batch?return=ids`, {
      body: { jobs: jobs.map(enqueueBody) },
      idempotent: jobs.every((j) => j.idempotencyKey !== undefined),
      signal: opts.signal,
    });
    return body.results;
  }

  /** GET /v1/jobs/:id — with `progress`: the data of the job's latest progress event, or null. */
  async getJob(id: number): Promise<Job & { progress: unknown }> {
    const { progress, ...job } = (await this.#send<{ job: WireJob & { progress?: unknown } }>('GET', `/v1/jobs/${seg(id)}`)).job;
    return { ...jobFromWire(job), progress: progress ?? null };
  }

  /** GET /v1/jobs — newest first, keyset pagination through `nextCursor`. */
  async listJobs(filter: ListJobsFilter = {}): Promise<JobPage> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v !== undefined && v !== null) q.set(k, String(v));
    const s = q.toString();
    const qs = s === '' ? '' : `?${s}`;
    const body = await this.#send<{ jobs: WireJob[]; nextCursor: string | number | null }>('GET', `/v1/jobs${qs}`);
    return { jobs: body.jobs.map(jobFromWire), nextCursor: body.nextCursor ?? null };
  }

  /** POST /v1/jobs/:id/cancel — waiting jobs are cancelled at once; a running one gets cancelRequested. */
  async cancelJob(id: number): Promise<Job> {
    return jobFromWire((await this.#send<{ job: WireJob }>('POST', `/v1/jobs/${seg(id)}/cancel`, { idempotent: true })).job);
  }

  /** POST /v1/jobs/:id/retry — a failed or cancelled job back to queued; other states: 409 invalid_state. */
  async retryJob(id: number): Promise<Job> {
    // Not idempotent: a repeat after a delivered retry would answer invalid_state (job now queued).
    return jobFromWire((await this.#send<{ job: WireJob }>('POST', `/v1/jobs/${seg(id)}/retry`)).job);
  }

  /**
   * GET /v1/jobs/:id/events — the job's events (stored history after `lastEventId`, then live);
   * ends after a final state. Reconnects with Last-Event-ID when the connection drops.
   */
  jobEvents(id: number, opts: { lastEventId?: number; signal?: AbortSignal } = {}): AsyncGenerator<WireJobEvent> {
    return readEventStream({ url: `${this.#base}/v1/jobs/${seg(id)}/events`, ...this.#streamAuth(), ...opts });
  }

  /** GET /v1/queues/:name/events — every event of the queue's jobs; runs until `signal` aborts. */
  queueEvents(name: string, opts: { lastEventId?: number; signal?: AbortSignal } = {}): AsyncGenerator<WireJobEvent> {
    return readEventStream({ url: `${this.#base}/v1/queues/${seg(name)}/events`, ...this.#streamAuth(), ...opts, reconnectOnEnd: true });
  }

  #streamAuth(): { apiKey?: string } {
    return this.#opts.apiKey ? { apiKey: this.#opts.apiKey } : {};
  }

  /** GET /v1/queues */
  async listQueues(): Promise<QueuePolicy[]> {
    return (await this.#send<{ queues: QueuePolicy[] }>('GET', '/v1/queues')).queues;
  }

  /** PUT /v1/queues/:name — creates the queue or updates its policy. */
  async putQueue(name: string, policy: QueuePolicyPatch = {}): Promise<QueuePolicy> {
    return (await this.#send<{ queue: QueuePolicy }>('PUT', `/v1/queues/${seg(name)}`, { body: policy, idempotent: true })).queue;
  }

  /** POST /v1/queues/:name/pause — claims stop; running jobs finish. */
  async pauseQueue(name: string): Promise<QueuePolicy> {
    return (await this.#send<{ queue: QueuePolicy }>('POST', `/v1/queues/${seg(name)}/pause`, { idempotent: true })).queue;
  }

  /** POST /v1/queues/:name/resume */
  async resumeQueue(name: string): Promise<QueuePolicy> {
    return (await this.#send<{ queue: QueuePolicy }>('POST', `/v1/queues/${seg(name)}/resume`, { idempotent: true })).queue;
  }

  /**
   * POST /v1/jobs/bulk/{retry,cancel,delete} — one statement over the jobs matching `filter`, at
   * most `limit`; call again while `count === limit`. Not retried after an ambiguous error.
   */
  async bulk(op: 'retry' | 'cancel' | 'delete', filter: BulkFilter): Promise<{ count: number }> {
    const iso = (d: Date | string | undefined) => (d instanceof Date ? d.toISOString() : d);
    const body = { ...filter, ...(filter.createdBefore !== undefined && { createdBefore: iso(filter.createdBefore) }), ...(filter.createdAfter !== undefined && { createdAfter: iso(filter.createdAfter) }) };
    return this.#send<{ count: number }>('POST', `/v1/jobs/bulk/${seg(op)}`, { body });
  }

  /** POST /v1/queues/:name/redrive — dead-lettered jobs back to the queues they failed in. */
  async redrive(name: string, opts: { limit?: number } = {}): Promise<{ count: number }> {
    return this.#send<{ count: number }>('POST', `/v1/queues/${seg(name)}/redrive`, { body: opts });
  }

  /** GET /v1/queues/:name/stats */
  async queueStats(name: string): Promise<QueueStats> {
    return (await this.#send<{ stats: QueueStats }>('GET', `/v1/queues/${seg(name)}/stats`)).stats;
  }

  /** GET /v1/schedules — by name, optionally only one queue's. */
  async listSchedules(filter: { queue?: string } = {}): Promise<Schedule[]> {
    const qs = filter.queue === undefined ? '' : `?queue=${seg(filter.queue)}`;
    return (await this.#send<{ schedules: WireSchedule[] }>('GET', `/v1/schedules${qs}`)).schedules.map(scheduleFromWire);
  }

  /** GET /v1/schedules/:name */
  async getSchedule(name: string): Promise<Schedule> {
    return scheduleFromWire((await this.#send<{ schedule: WireSchedule }>('GET', `/v1/schedules/${seg(name)}`)).schedule);
  }

  /** POST /v1/schedules — 409 conflict when the name exists (so a retried create is safe to repeat). */
  async createSchedule(input: ScheduleInput): Promise<Schedule> {
    return scheduleFromWire((await this.#send<{ schedule: WireSchedule }>('POST', '/v1/schedules', { body: input })).schedule);
  }

  /** PATCH /v1/schedules/:name — a new cron or time zone restarts the schedule from now. */
  async updateSchedule(name: string, patch: SchedulePatch): Promise<Schedule> {
    return scheduleFromWire((await this.#send<{ schedule: WireSchedule }>('PATCH', `/v1/schedules/${seg(name)}`, { body: patch, idempotent: true })).schedule);
  }

  /** DELETE /v1/schedules/:name — returns the deleted schedule; jobs it enqueued stay. */
  async deleteSchedule(name: string): Promise<Schedule> {
    return scheduleFromWire((await this.#send<{ schedule: WireSchedule }>('DELETE', `/v1/schedules/${seg(name)}`)).schedule);
  }

  /** POST /v1/schedules/:name/pause — no tick fires until resumed. */
  async pauseSchedule(name: string): Promise<Schedule> {
    return scheduleFromWire((await this.#send<{ schedule: WireSchedule }>('POST', `/v1/schedules/${seg(name)}/pause`, { idempotent: true })).schedule);
  }

  /** POST /v1/schedules/:name/resume — the next tick is the first after now; paused ticks are not caught up. */
  async resumeSchedule(name: string): Promise<Schedule> {
    return scheduleFromWire((await this.#send<{ schedule: WireSchedule }>('POST', `/v1/schedules/${seg(name)}/resume`, { idempotent: true })).schedule);
  }

  async #send<T>(method: JsonRequest['method'], path: string, extra: { body?: unknown; idempotent?: boolean; signal?: AbortSignal | undefined } = {}): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.#opts.apiKey) headers.authorization = `Bearer ${this.#opts.apiKey}`;
    const res = await requestJson<T>(
      {
        method,
        url: `${this.#base}${path}`,
        headers,
        body: extra.body,
        signal: extra.signal,
        timeoutMs: this.#opts.timeoutMs,
        // GETs and PUTs are safe to repeat by definition.
        idempotent: method === 'GET' || method === 'PUT' || extra.idempotent === true,
      },
      { fetch: this.#opts.fetch, retry: this.#opts.retry },
    );
    return res.body;
  }
}

function enqueueBody(input: EnqueueInput): Record<string, unknown> {
  const { runAt, ...rest } = input;
  return runAt === undefined ? rest : { ...rest, runAt: runAt instanceof Date ? runAt.toISOString() : runAt };
}

/** Encodes one path segment, so a hostile name cannot change the route. */
function seg(v: string | number): string {
  return encodeURIComponent(String(v));
}
