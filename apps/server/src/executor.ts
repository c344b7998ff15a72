import type { Config } from '@pgdispatch/core/config';
import type { RolePlan } from '@pgdispatch/core/roles';
import type { Transport } from '@pgdispatch/core/transport';
import { HttpTransport } from '@pgdispatch/worker/http-transport';
import { loadTaskRegistry } from '@pgdispatch/worker/load-tasks';
import type { TaskRegistry } from '@pgdispatch/worker/task';
import type { Logger } from '@pgdispatch/core/log';
import { readinessOf } from '@pgdispatch/worker/create-worker';
import { WorkerRuntime, type JobFinishedEvent } from '@pgdispatch/worker/runtime';
import type { WorkerMetrics } from './worker-metrics.js';

export interface Executor {
  stop(): Promise<void>;
  readiness(): Promise<{ ready: boolean; details: Record<string, unknown> }>;
}

/**
 * Counts each finished job and observes its duration, with the labelled children cached per queue
 * (and outcome): this runs once per job, and prom-client's `inc({ queue, outcome })` builds and
 * validates a label object on every call.
 */
function jobFinishedObserver(metrics: WorkerMetrics): (e: JobFinishedEvent) => void {
  const perQueue = new Map<string, { duration: { observe(v: number): void }; outcomes: Map<string, { inc(): void }> }>();
  return (e) => {
    let q = perQueue.get(e.job.queue);
    if (!q) perQueue.set(e.job.queue, (q = { duration: metrics.duration.labels(e.job.queue), outcomes: new Map() }));
    let c = q.outcomes.get(e.outcome);
    if (!c) q.outcomes.set(e.outcome, (c = metrics.jobs.labels(e.job.queue, e.outcome)));
    c.inc();
    q.duration.observe(e.durationMs / 1000);
  };
}

/** The built-ins BUILTIN_TASKS selects plus TASKS_MODULE, loaded and validated (throws TasksModuleError). */
export function loadExecutorTasks(config: Readonly<Config>): Promise<TaskRegistry> {
  return loadTaskRegistry({
    ...(config.TASKS_MODULE ? { tasksModule: config.TASKS_MODULE } : {}),
    builtins: { names: config.BUILTIN_TASKS, http: { allow: config.HTTP_TASK_ALLOW, maxResponseBytes: config.HTTP_TASK_MAX_RESPONSE_BYTES } },
  });
}

/**
 * Starts the worker runtime: in-process transport in role all (the control plane itself), HTTP to
 * API_URL in role worker. Tasks: the built-ins BUILTIN_TASKS selects plus TASKS_MODULE.
 */
export async function startExecutor(deps: { config: Readonly<Config>; plan: RolePlan; log: Logger; metrics: WorkerMetrics; transport?: Transport; tasks?: TaskRegistry }): Promise<Executor> {
  const { config, plan, log, metrics } = deps;
  const registry = deps.tasks ?? (await loadExecutorTasks(config));
  log.info('tasks registered', { tasks: registry.names(), module: config.TASKS_MODULE ?? null });
  const transport = deps.transport ?? new HttpTransport({ apiUrl: config.API_URL ?? '', token: config.WORKER_TOKEN ?? '' });
  const runtime = new WorkerRuntime({
    transport,
    tasks: registry,
    queues: plan.queues,
    concurrency: config.WORKER_CONCURRENCY,
    prefetch: config.WORKER_PREFETCH,
    heartbeatMs: config.HEARTBEAT_MS,
    shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
    dequeueWaitMs: config.DEQUEUE_MAX_WAIT_MS,
    log,
    onJobFinished: jobFinishedObserver(metrics),
  });
  runtime.start();
  const timer = setInterval(() => metrics.inFlight.set(runtime.stats().inFlight), 1_000);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await runtime.stop();
      await transport.close?.();
    },
    readiness: async () => {
      if (deps.transport) {
        // Role all: the control plane is in this process; the api's own checks (database,
        // migrations) decide, and a database blip must not flip the executor's part.
        const s = runtime.stats();
        return { ready: s.running, details: { worker: s } };
      }
      // Role worker: ready only while the api answers this worker's dequeues.
      const r = readinessOf(runtime);
      return { ready: r.ready, details: { ...(r.reason ? { reason: r.reason } : {}), api: { url: config.API_URL, ...r.api }, worker: r.worker } };
    },
  };
}
