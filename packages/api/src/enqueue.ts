import { Batcher } from '@pgdispatch/core/batcher';
import type { ChildJob, LeaseRef } from '@pgdispatch/core/transport';
import type { Exec, Sql } from '@pgdispatch/engine/db';
import { DispatchError } from '@pgdispatch/core/errors';
import { unstorableText } from '@pgdispatch/core/storable';
import type { QueueScope } from '@pgdispatch/engine/queries/fenced';
import { jobAssertLease } from '@pgdispatch/engine/queries/job-admin';
import { jobEnqueue, jobEnqueueEach, jobEnqueueMany, jobEnqueueManyIds, type EnqueueItem, type EnqueueResult, type EnqueueSettled } from '@pgdispatch/engine/queries/job-enqueue';
import type { Metrics } from './metrics.js';

/**
 * The enqueue path of the api tier: public enqueues (one or a batch, one statement) and the child
 * jobs a running job enqueues through the Transport. Values are validated once, by the engine
 * (`jobEnqueueMany`, `jobEnqueueEach`); every created job counts in `pgdispatch_jobs_enqueued_total`.
 *
 * Single enqueues are group-committed: those that arrive in the same I/O turn (or while
 * `maxInFlight` groups are being written) share one INSERT and one commit (`jobEnqueueEach`, which
 * answers each item for itself). No timer: a request that finds nothing in flight goes out at
 * once (Batcher `eager`), so grouping costs a lone request nothing; under concurrency the
 * statement, round trip and commit are shared. That matters more than usual here: every enqueue
 * NOTIFYs, and PostgreSQL serialises the commits of notifying transactions on one lock, so
 * concurrent single enqueues could not even share a WAL flush (16 concurrent engine enqueues ran
 * no faster than one at a time; grouped over HTTP they ran ~5× faster, docs/benchmarks.md).
 *
 * `onRunnable` is told, right after the enqueue committed, the queues that got a job runnable now
 * (serve.ts wires it to this process's dispatcher: in role all, and on the api that received the
 * enqueue, the claim starts without waiting for the NOTIFY round trip the statement also sends).
 */
export class Enqueuer {
  readonly #singles: Batcher<EnqueueItem, EnqueueSettled>;

  constructor(private readonly opts: { sql: Sql; metrics: Metrics; maxPayloadBytes: number; onRunnable?: (queues: string[]) => void; maxInFlight?: number }) {
    this.#singles = new Batcher(async (items) => {
      const out = await jobEnqueueEach(opts.sql, { items, maxPayloadBytes: opts.maxPayloadBytes });
      const written = out.flatMap((s) => (s.ok ? [s.value] : []));
      for (const r of written) this.#count(r);
      this.#wake(written); // once per group
      return out;
    }, { maxBatch: 1000, maxInFlight: opts.maxInFlight ?? 4, eager: true });
  }

  /** Single enqueues waiting to join the next group. */
  get waiting(): number {
    return this.#singles.waiting;
  }

  /** One job, grouped with the single enqueues waiting alongside it; its own error if it fails. */
  async enqueueOne(item: EnqueueItem): Promise<EnqueueResult> {
    const r = await this.#singles.push(item);
    if (!r.ok) throw r.error;
    return r.value;
  }

  /** A batch: all or nothing (one bad item rejects the request), one statement. */
  async enqueue(items: EnqueueItem[]): Promise<EnqueueResult[]> {
    const results = await jobEnqueueMany(this.opts.sql, { items, maxPayloadBytes: this.opts.maxPayloadBytes });
    for (const r of results) this.#count(r);
    this.#wake(results);
    return results;
  }

  /**
   * A child of the running job `parent`, idempotent per (parent, key): a retried parent gets the
   * same child back. The lease check and the insert share one transaction, so a parent whose
   * lease was lost creates nothing, and so does one whose queue is outside `scope` (forbidden).
   */
  async child(parent: LeaseRef, key: string, job: ChildJob, scope: QueueScope = '*'): Promise<{ jobId: number; created: boolean }> {
    const badKey = unstorableText(key, 'key');
    if (badKey) throw new DispatchError('invalid_request', `child ${badKey.field} ${badKey.problem}`, { details: badKey });
    const created = await this.opts.sql.begin(async (tx: Exec) => {
      await jobAssertLease(tx, { id: parent.id, leaseToken: parent.leaseToken, queues: scope });
      const r = await jobEnqueue(tx, { ...job, parentId: parent.id, idempotencyKey: `child:${parent.id}:${key}`, maxPayloadBytes: this.opts.maxPayloadBytes });
      this.#count(r);
      return r;
    }) as EnqueueResult;
    this.#wake([created]);
    return { jobId: created.job.id, created: created.created };
  }

  /**
   * The queues of created jobs that were runnable when inserted: `runAt <= createdAt`, both the
   * database's now() of the insert, which is exactly when the statement notified (job-enqueue.ts).
   */
  #wake(results: readonly EnqueueResult[]): void {
    if (!this.opts.onRunnable) return;
    const queues = new Set<string>();
    for (const r of results) if (r.created && r.job.runAt.getTime() <= r.job.createdAt.getTime()) queues.add(r.job.queue);
    if (queues.size > 0) this.opts.onRunnable([...queues]);
  }

  /** A batch answered with ids only (the same rules as `enqueue`, narrower rows back). */
  async enqueueIds(items: EnqueueItem[]): Promise<{ id: number; created: boolean }[]> {
    const results = await jobEnqueueManyIds(this.opts.sql, { items, maxPayloadBytes: this.opts.maxPayloadBytes });
    const runnable = new Set<string>();
    results.forEach((r, i) => {
      const queue = (items[i] as EnqueueItem).queue;
      if (r.created) this.opts.metrics.enqueued.inc({ queue });
      if (r.runnable) runnable.add(queue);
    });
    if (runnable.size > 0) this.opts.onRunnable?.([...runnable]);
    return results.map((r) => ({ id: r.id, created: r.created }));
  }

  #count(r: EnqueueResult): void {
    if (r.created) this.opts.metrics.enqueued.inc({ queue: r.job.queue });
  }
}
