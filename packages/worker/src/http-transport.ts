/**
 * The Transport of role worker: the internal API (`/internal/v1`) over HTTP. Requests share the
 * client package's `requestJson`, so network errors and 503 are retried with exponential backoff
 * and full jitter (503 honours Retry-After) and 4xx never are. The default fetch is the
 * client package's keep-alive `httpFetch` on node:http (1.6 ms per small POST against 12.7 ms
 * with the global, undici fetch: packages/client/src/http-fetch.ts).
 *
 * Every call is safe to repeat, so ambiguous network errors are retried too: writes are fenced by
 * lease token (a repeat of a write that already landed at worst answers lease_lost, which the
 * runtime logs), child enqueues and step checkpoints are keyed, and a dequeue whose reply was
 * lost is released by the api when the requester's connection goes away.
 *
 * Responses are validated with the contract's schemas: an api and a worker of incompatible
 * versions fail loudly on the first call rather than misreading each other.
 */
import { requestJson } from '@pgdispatch/client/retry-fetch';
import type { FetchLike, RetryOptions } from '@pgdispatch/client/retry-fetch';
import { Batcher } from '@pgdispatch/core/batcher';
import { DispatchError, isDispatchError } from '@pgdispatch/core/errors';
import type { ChildJob, DequeueRequest, FailReply, HeartbeatReply, LeaseOutcome, LeaseRef, Transport } from '@pgdispatch/core/transport';
import type { ClaimedJob, JobError } from '@pgdispatch/core/types';
import type { z } from 'zod';
import {
  childEnqueueResponseSchema,
  completeManyResponseSchema,
  dequeueResponseSchema,
  failManyResponseSchema,
  heartbeatResponseSchema,
  internalPath,
  progressResponseSchema,
  releaseResponseSchema,
  stepSaveResponseSchema,
  stepsLoadResponseSchema,
} from '@pgdispatch/core/internal-api';
import type { InternalRoute } from '@pgdispatch/core/internal-api';

export interface HttpTransportOptions {
  /** Base URL of the api tier, e.g. `http://pgdispatch:8080` (a path prefix is kept). */
  apiUrl: string;
  /** Worker token (JWT from `pgdispatch token`, or a WORKER_KEYS secret). */
  token: string;
  /** Custom fetch (default: the keep-alive `httpFetch` of @pgdispatch/client/http-fetch). */
  fetch?: FetchLike;
  /** Retry policy (defaults: 5 tries, 200 ms base, 5000 ms cap). */
  retry?: Partial<RetryOptions>;
  /** Timeout of one non-dequeue request, in ms (default 30000). */
  requestTimeoutMs?: number;
  /** Extra time a dequeue may take beyond its `waitMs` before it counts as hung, in ms (default 15000). */
  dequeueSlackMs?: number;
}

export class HttpTransport implements Transport {
  readonly #base: string;
  readonly #opts: HttpTransportOptions;
  /** The api predates task routing (it refused the `tasks` field): dequeue without it. */
  #legacyDequeue = false;

  constructor(opts: HttpTransportOptions) {
    if (!opts.apiUrl) throw new TypeError('apiUrl is required');
    if (!opts.token) throw new TypeError('token is required');
    this.#base = opts.apiUrl.replace(/\/+$/, '');
    this.#opts = opts;
  }

  /**
   * Long-polls for up to `max` jobs. Aborting `req.signal` aborts the HTTP request (the api then
   * releases anything it claimed for it) and resolves with no jobs.
   */
  async dequeue(req: DequeueRequest): Promise<ClaimedJob[]> {
    const tasks = req.tasks === undefined || this.#legacyDequeue ? {} : { tasks: req.tasks };
    try {
      const body = await this.#call('dequeue', undefined, { queues: req.queues, ...tasks, max: req.max, waitMs: req.waitMs }, dequeueResponseSchema, {
        signal: req.signal,
        timeoutMs: req.waitMs + (this.#opts.dequeueSlackMs ?? 15_000),
      });
      return body.jobs;
    } catch (err) {
      if (req.signal?.aborted) return [];
      if ('tasks' in tasks && refusedTasksField(err)) {
        // An api older than this worker (workers rolled out first): it hands out any task, and the
        // runtime gives back the ones it does not know without spending an attempt.
        this.#legacyDequeue = true;
        return this.dequeue(req);
      }
      throw err;
    }
  }

  async heartbeat(items: LeaseRef[]): Promise<HeartbeatReply[]> {
    if (items.length === 0) return [];
    const body = await this.#call('heartbeat', undefined, { items: items.map(leaseRef) }, heartbeatResponseSchema);
    return body.items;
  }

  /**
   * Completions are coalesced: every complete() issued in the same I/O turn (or while earlier
   * batches are in flight) goes out as one POST /internal/v1/complete, written by the api in one
   * statement. One request per job was what capped split mode (about 1,800 jobs/s in the bench).
   */
  async complete(item: LeaseRef & { result?: unknown }): Promise<LeaseOutcome> {
    return this.#completions.push({ id: item.id, leaseToken: item.leaseToken, result: item.result });
  }

  readonly #completions = new Batcher<LeaseRef & { result?: unknown }, LeaseOutcome>(
    async (items) => (await this.#call('completeMany', undefined, { items }, completeManyResponseSchema)).items,
    { maxBatch: 1_000, maxInFlight: 4 },
  );

  /** Failures are coalesced like completions (POST /internal/v1/fail with many items). */
  async fail(item: LeaseRef & { error: JobError; retryable: boolean }): Promise<FailReply> {
    return this.#failures.push({ id: item.id, leaseToken: item.leaseToken, error: item.error, retryable: item.retryable });
  }

  readonly #failures = new Batcher<LeaseRef & { error: JobError; retryable: boolean }, FailReply>(
    async (items) => (await this.#call('failMany', undefined, { items }, failManyResponseSchema)).items,
    { maxBatch: 1_000, maxInFlight: 4 },
  );

  async release(items: LeaseRef[]): Promise<LeaseOutcome[]> {
    if (items.length === 0) return [];
    const body = await this.#call('release', undefined, { items: items.map(leaseRef) }, releaseResponseSchema);
    return body.items;
  }

  async loadSteps(ref: LeaseRef): Promise<Record<string, unknown>> {
    return (await this.#call('stepsLoad', ref.id, { leaseToken: ref.leaseToken }, stepsLoadResponseSchema)).steps;
  }

  async saveStep(ref: LeaseRef & { name: string; result: unknown }): Promise<void> {
    await this.#call('stepSave', ref.id, { leaseToken: ref.leaseToken, name: ref.name, result: ref.result }, stepSaveResponseSchema);
  }

  async progress(ref: LeaseRef & { data: unknown }): Promise<void> {
    await this.#call('progress', ref.id, { leaseToken: ref.leaseToken, data: ref.data }, progressResponseSchema);
  }

  async enqueueChild(ref: LeaseRef & { key: string; job: ChildJob }): Promise<{ jobId: number; created: boolean }> {
    return this.#call('children', ref.id, { leaseToken: ref.leaseToken, key: ref.key, job: ref.job }, childEnqueueResponseSchema);
  }

  /** Nothing to close: keep-alive connections belong to a shared agent and idle out on their own. */
  async close(): Promise<void> {}

  async #call<S extends z.ZodType>(
    route: InternalRoute,
    id: number | undefined,
    body: unknown,
    schema: S,
    extra: { signal?: AbortSignal | undefined; timeoutMs?: number } = {},
  ): Promise<z.output<S>> {
    const path = internalPath(route, id);
    const res = await requestJson(
      {
        method: 'POST',
        url: `${this.#base}${path}`,
        headers: { authorization: `Bearer ${this.#opts.token}` },
        body,
        signal: extra.signal,
        timeoutMs: extra.timeoutMs ?? this.#opts.requestTimeoutMs ?? 30_000,
        idempotent: true,
      },
      { fetch: this.#opts.fetch, retry: this.#opts.retry },
    );
    const parsed = schema.safeParse(res.body);
    if (!parsed.success) {
      throw new DispatchError('internal', `unexpected response from POST ${path}: the api and this worker may be incompatible versions`, {
        details: { issues: parsed.error.issues.slice(0, 5) },
      });
    }
    return parsed.data;
  }
}

function leaseRef(r: LeaseRef): LeaseRef {
  // Only the two fields: callers may pass richer objects and the api's schemas are strict.
  return { id: r.id, leaseToken: r.leaseToken };
}

/** A strict-schema 400 naming `tasks` as an unrecognized key: the api predates task routing. */
function refusedTasksField(err: unknown): boolean {
  if (!isDispatchError(err, 'invalid_request') || !Array.isArray(err.details)) return false;
  return err.details.some((d: unknown) => {
    const issue = d as { code?: unknown; message?: unknown };
    return issue.code === 'unrecognized_keys' && typeof issue.message === 'string' && issue.message.includes('"tasks"');
  });
}
