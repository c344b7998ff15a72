import type { ClaimedJob } from '@pgdispatch/core/types';
import type { Metrics } from './metrics.js';

/** Most claims remembered; the map only feeds a histogram, so past the bound it starts afresh. */
const MAX_TRACKED = 100_000;

/** One claim round's jobs of one queue share their record (one object per round, not per job). */
interface ClaimRecord {
  at: number;
  queue: string;
}

type Observer = { observe(value: number): void };
type Incrementer = { inc(value?: number): void };

/**
 * Claim-to-result bookkeeping of the jobs claimed through this api process: each outcome counts
 * in `pgdispatch_jobs_completed_total`, and the time since its claim goes to
 * `pgdispatch_job_run_duration_seconds` (as this process saw it: a job claimed through another pod
 * has no duration here).
 *
 * Runs once per job on the hot path, so the labelled children are cached per queue (and
 * outcome): prom-client's `observe({ queue }, v)` builds and validates a label object per call.
 */
export class RunDurations {
  readonly #claimedAt = new Map<number, ClaimRecord>();
  readonly #durations = new Map<string, Observer>();
  readonly #outcomes = new Map<string, Map<string, Incrementer>>();

  constructor(private readonly metrics: Metrics) {}

  claimed(jobs: readonly ClaimedJob[], at = Date.now()): void {
    if (this.#claimedAt.size > MAX_TRACKED) this.#claimedAt.clear();
    let rec: ClaimRecord | undefined;
    for (const j of jobs) {
      if (rec?.queue !== j.queue) rec = { at, queue: j.queue };
      this.#claimedAt.set(j.id, rec);
    }
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
    this.#outcomeCounter(queue, outcome).inc();
    if (refused) return;
    this.#claimedAt.delete(id);
    if (c) this.#duration(queue).observe((at - c.at) / 1000);
  }

  #duration(queue: string): Observer {
    let d = this.#durations.get(queue);
    if (!d) this.#durations.set(queue, (d = this.metrics.runDuration.labels(queue)));
    return d;
  }

  #outcomeCounter(queue: string, outcome: string): Incrementer {
    let byOutcome = this.#outcomes.get(queue);
    if (!byOutcome) this.#outcomes.set(queue, (byOutcome = new Map()));
    let c = byOutcome.get(outcome);
    if (!c) byOutcome.set(outcome, (c = this.metrics.completed.labels(queue, outcome)));
    return c;
  }
}
