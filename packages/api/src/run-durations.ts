import type { ClaimedJob } from '@pgdispatch/core/types';
import type { Metrics } from './metrics.js';

/** Most claims remembered; the map only feeds a histogram, so past the bound it starts afresh. */
const MAX_TRACKED = 100_000;

/**
 * Claim-to-result bookkeeping of the jobs claimed through this api process: each outcome counts
 * in `pgdispatch_jobs_completed_total`, and the time since its claim goes to
 * `pgdispatch_job_run_duration_seconds` (as this process saw it: a job claimed through another pod
 * has no duration here).
 */
export class RunDurations {
  readonly #claimedAt = new Map<number, { at: number; queue: string }>();

  constructor(private readonly metrics: Metrics) {}

  claimed(jobs: readonly ClaimedJob[], at = Date.now()): void {
    if (this.#claimedAt.size > MAX_TRACKED) this.#claimedAt.clear();
    for (const j of jobs) this.#claimedAt.set(j.id, { at, queue: j.queue });
  }

  /** Jobs given back unrun (released): no outcome, no duration. */
  forget(ids: Iterable<number>): void {
    for (const id of ids) this.#claimedAt.delete(id);
  }

  /**
   * An outcome arrived for job `id`: a final or retry state, or the code an item was refused
   * with. A refused write came from a stale holder (or a forbidden one): the live holder's claim
   * record stays for its own outcome.
   */
  outcome(id: number, outcome: string, refused: boolean, at = Date.now()): void {
    const c = this.#claimedAt.get(id);
    const queue = c?.queue ?? 'unknown';
    this.metrics.completed.inc({ queue, outcome });
    if (refused) return;
    this.#claimedAt.delete(id);
    if (c) this.metrics.runDuration.observe({ queue }, (at - c.at) / 1000);
  }
}
