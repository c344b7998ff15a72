import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one process; a registry per instance so tests never collide. */
export class Metrics {
  readonly registry = new Registry();
  readonly enqueued = new Counter({ name: 'pgdispatch_jobs_enqueued_total', help: 'Jobs enqueued (created)', labelNames: ['queue'], registers: [this.registry] });
  readonly completed = new Counter({ name: 'pgdispatch_jobs_completed_total', help: 'Job results by outcome', labelNames: ['queue', 'outcome'], registers: [this.registry] });
  readonly runDuration = new Histogram({
    name: 'pgdispatch_job_run_duration_seconds',
    help: 'Time from claim to result, as seen by this api process',
    labelNames: ['queue'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [this.registry],
  });
  readonly claimBatch = new Histogram({
    name: 'pgdispatch_claim_batch_size',
    help: 'Jobs claimed per claim statement',
    buckets: [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [this.registry],
  });
  readonly dequeueWait = new Histogram({
    name: 'pgdispatch_dequeue_wait_seconds',
    help: 'How long dequeue requests waited before an answer',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly released = new Counter({ name: 'pgdispatch_jobs_released_total', help: 'Claimed jobs released without an attempt', registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'pgdispatch_queue_depth', help: 'Jobs by queue and live state', labelNames: ['queue', 'state'], registers: [this.registry] });
  readonly oldestWaiting = new Gauge({ name: 'pgdispatch_queue_oldest_waiting_seconds', help: 'Age of the oldest runnable job', labelNames: ['queue'], registers: [this.registry] });

  /** Executor side (roles worker and all): outcomes and handler durations as the worker saw them. */
  readonly workerJobs = new Counter({ name: 'pgdispatch_worker_jobs_total', help: 'Jobs handled by this process, by outcome', labelNames: ['queue', 'outcome'], registers: [this.registry] });
  readonly workerDuration = new Histogram({
    name: 'pgdispatch_worker_job_duration_seconds',
    help: 'Handler start to reported outcome',
    labelNames: ['queue'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [this.registry],
  });
  readonly workerInFlight = new Gauge({ name: 'pgdispatch_worker_in_flight', help: 'Handlers running in this process', registers: [this.registry] });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'pgdispatch_' });
  }
}
