/**
 * `createWorker`: a pgdispatch worker embedded in an existing Node service. It pulls jobs of its
 * tasks from the api tier over the internal HTTP API (`apiUrl` + a worker `token`), exactly as
 * the `pgdispatch-worker` bin and the image's role worker do, and never touches PostgreSQL.
 *
 * @example
 * // createWorker from the package entry, @pgdispatch/worker
 * const worker = createWorker({ apiUrl: 'http://pgdispatch:8080', token: workerToken, tasks: [resize], concurrency: 8 });
 * worker.start();
 * process.once('SIGTERM', () => void worker.stop());
 */
import type { Logger } from '@pgdispatch/core/log';
import type { ApiConnection } from './api-connection.js';
import { HttpTransport } from './http-transport.js';
import type { HttpTransportOptions } from './http-transport.js';
import { WorkerRuntime } from './runtime.js';
import type { JobFinishedEvent, WorkerStats } from './runtime.js';
import type { TaskDefinition, TaskRegistry } from './task.js';

export interface CreateWorkerOptions {
  /** Base URL of the api tier, e.g. `http://pgdispatch:8080`. */
  apiUrl: string;
  /** Worker credential: a JWT from `pgdispatch token` or a `WORKER_KEYS` secret. */
  token: string;
  /** The tasks this worker runs (definitions from `defineTask`, or a TaskRegistry). Only their jobs are handed to it. */
  tasks: Iterable<TaskDefinition> | TaskRegistry;
  /** Queues to pull from: `*` (default: every queue the credential allows) or names. */
  queues?: '*' | string[];
  /** Handlers running at once (default 16). */
  concurrency?: number;
  /** Jobs claimed ahead of free handler slots (default 0). */
  prefetch?: number;
  /** Heartbeat interval in ms (default 10000; keep it under the api's LEASE_MS / 2). */
  heartbeatMs?: number;
  /** On stop(), how long running handlers may finish before their jobs are released, in ms (default 25000). */
  shutdownGraceMs?: number;
  /** Longest dequeue long-poll, in ms (default 30000). */
  dequeueWaitMs?: number;
  /** Structured logger (default: silent). `createJsonLogger` from `@pgdispatch/worker` writes JSON lines. */
  log?: Logger;
  /** Called when a job's handling ends (metrics). */
  onJobFinished?: (event: JobFinishedEvent) => void;
  /** HTTP details: custom fetch, retry policy, timeouts. */
  http?: Omit<HttpTransportOptions, 'apiUrl' | 'token'>;
}

export interface WorkerReadiness {
  /** Running, and its last dequeue was answered by the api. */
  ready: boolean;
  /** The reason when not ready. */
  reason?: string;
  api: ApiConnection;
  worker: WorkerStats;
}

export interface Worker {
  /** Starts pulling work. */
  start(): void;
  /** Graceful stop: finish or release in-flight jobs (no attempt spent); resolves when done. */
  stop(): Promise<void>;
  stats(): WorkerStats;
  /** Whether this worker is doing its job, and why not: for a readiness probe. */
  readiness(): WorkerReadiness;
}

export function createWorker(opts: CreateWorkerOptions): Worker {
  const transport = new HttpTransport({ ...opts.http, apiUrl: opts.apiUrl, token: opts.token });
  const runtime = new WorkerRuntime({
    transport,
    tasks: opts.tasks,
    ...(opts.queues !== undefined ? { queues: opts.queues } : {}),
    ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
    ...(opts.prefetch !== undefined ? { prefetch: opts.prefetch } : {}),
    ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}),
    ...(opts.shutdownGraceMs !== undefined ? { shutdownGraceMs: opts.shutdownGraceMs } : {}),
    ...(opts.dequeueWaitMs !== undefined ? { dequeueWaitMs: opts.dequeueWaitMs } : {}),
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.onJobFinished ? { onJobFinished: opts.onJobFinished } : {}),
  });
  return {
    start: () => runtime.start(),
    stop: async () => {
      await runtime.stop();
      await transport.close();
    },
    stats: () => runtime.stats(),
    readiness: () => readinessOf(runtime),
  };
}

/** Readiness of a runtime: running, and the api answered its last dequeue. */
export function readinessOf(runtime: WorkerRuntime): WorkerReadiness {
  const worker = runtime.stats();
  const api = runtime.connection();
  if (!worker.running) return { ready: false, reason: 'the worker runtime is not running', api, worker };
  if (api.state !== 'ok') return { ready: false, reason: api.reason ?? 'no dequeue has been answered yet', api, worker };
  return { ready: true, api, worker };
}
