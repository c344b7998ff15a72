import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Executor side (roles worker and all): outcomes and handler durations as this process saw them. */
export interface WorkerMetrics {
  jobs: Counter<'queue' | 'outcome'>;
  duration: Histogram<'queue'>;
  inFlight: Gauge;
}

/**
 * Registers the executor's metrics on `registry` (the control plane's in role all, the process's
 * own in role worker). They live here rather than in packages/api so that the worker side never
 * imports the api package.
 */
export function workerMetrics(registry: Registry): WorkerMetrics {
  return {
    jobs: new Counter({ name: 'pgdispatch_worker_jobs_total', help: 'Jobs handled by this process, by outcome', labelNames: ['queue', 'outcome'], registers: [registry] }),
    duration: new Histogram({
      name: 'pgdispatch_worker_job_duration_seconds',
      help: 'Handler start to reported outcome',
      labelNames: ['queue'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers: [registry],
    }),
    inFlight: new Gauge({ name: 'pgdispatch_worker_in_flight', help: 'Handlers running in this process', registers: [registry] }),
  };
}
