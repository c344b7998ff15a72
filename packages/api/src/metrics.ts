import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics of the control plane (roles api and all); a registry per instance so tests
 * never collide. The executor's metrics (apps/server/src/worker-metrics.ts) and Node's default
 * metrics are registered on the same registry by the server.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly enqueued = new Counter({ name: 'pgdispatch_jobs_enqueued_total', help: 'Jobs enqueued (created)', labelNames: ['queue'], registers: [this.registry] });
  readonly scheduleTicks = new Counter({
    name: 'pgdispatch_schedule_ticks_total',
    help: 'Schedule ticks by outcome: fired (on time), late (missed, fired by the catch-up policy), skipped (missed, dropped by it)',
    labelNames: ['schedule', 'outcome'],
    registers: [this.registry],
  });
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
  readonly tasksWithoutWorkers = new Gauge({
    name: 'pgdispatch_tasks_without_workers',
    help: 'Tasks with waiting jobs that no executor declared lately (1 per task; the jobs wait)',
    labelNames: ['task'],
    registers: [this.registry],
  });
  readonly oldestWaiting = new Gauge({ name: 'pgdispatch_queue_oldest_waiting_seconds', help: 'Age of the oldest runnable job', labelNames: ['queue'], registers: [this.registry] });

  readonly eventsStreamed = new Counter({ name: 'pgdispatch_events_streamed_total', help: 'Job events written to SSE streams by this process', labelNames: ['type'], registers: [this.registry] });
  readonly eventStreams = new Gauge({ name: 'pgdispatch_event_streams', help: 'Open SSE event streams on this process', registers: [this.registry] });
  readonly deadLettered = new Gauge({ name: 'pgdispatch_dead_letter_jobs', help: 'Dead-lettered jobs waiting for a redrive, by the queue they sit in', labelNames: ['queue'], registers: [this.registry] });
  readonly redriven = new Counter({ name: 'pgdispatch_jobs_redriven_total', help: 'Dead-lettered jobs sent back by redrive', labelNames: ['queue'], registers: [this.registry] });
  readonly bulkJobs = new Counter({ name: 'pgdispatch_bulk_jobs_total', help: 'Jobs changed by bulk operations', labelNames: ['op'], registers: [this.registry] });
  readonly rateLimited = new Counter({ name: 'pgdispatch_rate_limited_claims_total', help: 'Claims a queue\'s rate limit cut short (the rest waits for tokens)', labelNames: ['queue'], registers: [this.registry] });
  readonly eventFetches = new Counter({ name: 'pgdispatch_event_fetches_total', help: 'Queries that fetched notified job events for this process\'s streams', registers: [this.registry] });
}
