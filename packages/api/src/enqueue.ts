import type { ChildJob, LeaseRef } from '@pgdispatch/core/transport';
import type { Exec, Sql } from '@pgdispatch/engine/db';
import { DispatchError } from '@pgdispatch/core/errors';
import { unstorableText } from '@pgdispatch/core/storable';
import type { QueueScope } from '@pgdispatch/engine/queries/fenced';
import { jobAssertLease } from '@pgdispatch/engine/queries/job-admin';
import { jobEnqueue, jobEnqueueMany, type EnqueueItem, type EnqueueResult } from '@pgdispatch/engine/queries/job-enqueue';
import type { Metrics } from './metrics.js';

/**
 * The enqueue path of the api tier: public enqueues (one or a batch, one statement) and the child
 * jobs a running job enqueues through the Transport. Values are validated once, by the engine
 * (`jobEnqueueMany`); every created job counts in `pgdispatch_jobs_enqueued_total`.
 */
export class Enqueuer {
  constructor(private readonly opts: { sql: Sql; metrics: Metrics; maxPayloadBytes: number }) {}

  async enqueue(items: EnqueueItem[]): Promise<EnqueueResult[]> {
    const results = await jobEnqueueMany(this.opts.sql, { items, maxPayloadBytes: this.opts.maxPayloadBytes });
    for (const r of results) this.#count(r);
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
    return this.opts.sql.begin(async (tx: Exec) => {
      await jobAssertLease(tx, { id: parent.id, leaseToken: parent.leaseToken, queues: scope });
      const r = await jobEnqueue(tx, { ...job, parentId: parent.id, idempotencyKey: `child:${parent.id}:${key}`, maxPayloadBytes: this.opts.maxPayloadBytes });
      this.#count(r);
      return { jobId: r.job.id, created: r.created };
    }) as Promise<{ jobId: number; created: boolean }>;
  }

  #count(r: EnqueueResult): void {
    if (r.created) this.opts.metrics.enqueued.inc({ queue: r.job.queue });
  }
}
