/**
 * A job this worker holds a lease on, from claim until its outcome is delivered, and the one
 * place its state changes. Where the job is — waiting in the prefetch buffer or occupying a
 * handler slot — is the runtime's business (its buffer and its running count); the state says
 * what the lease allows and what happens to the handler's outcome.
 *
 * ```
 *            ┌──────────── heartbeat: cancel requested ───────────┐
 *            │                                                     ▼
 *   claim ─► held ──── handler ends ───► reporting ──► done    cancelling ── handler ends ─► reporting
 *            │  └─ heartbeat: lease lost ─► lost ─────────────► done          (a failure records `cancelled`)
 *            └──── stop(): released ─────► released ──────────► done
 * ```
 * From `cancelling` the lease can still be lost or the job released at shutdown. `lost` and
 * `released` drop whatever the handler later returns: the job is (or will be) run elsewhere.
 */
import type { LeaseRef } from '@pgdispatch/core/transport';
import type { ClaimedJob } from '@pgdispatch/core/types';

/**
 * How handling a job ended, from this worker's point of view:
 * `succeeded`/`failed`/`cancelled` were recorded; `lease_lost` means the result was dropped
 * (the job is or will be run elsewhere); `released` means it went back to the queue at shutdown;
 * `unreported` means the outcome could not be delivered (the lease will expire, the job re-runs).
 */
export type JobOutcome = 'succeeded' | 'failed' | 'cancelled' | 'lease_lost' | 'released' | 'unreported';

export type HeldState = 'held' | 'cancelling' | 'lost' | 'released' | 'reporting' | 'done';

/** Every allowed transition; anything else is a bug in the runtime and throws. */
const TRANSITIONS: Readonly<Record<HeldState, readonly HeldState[]>> = {
  held: ['cancelling', 'lost', 'released', 'reporting'],
  cancelling: ['lost', 'released', 'reporting'],
  lost: ['done'],
  released: ['done'],
  reporting: ['done'],
  done: [],
};

export class HeldJob {
  readonly job: ClaimedJob;
  /** When the handler started (claim time until then), in epoch ms. */
  startedAt = Date.now();
  #state: HeldState = 'held';
  /**
   * Created on the first read of `signal` (a handler that never looks at its signal costs no
   * AbortController: 3.7 % of the `all` process's CPU in the bench profile when made per job).
   */
  #controller: AbortController | undefined;
  /** Why the job was aborted (cancel, lease loss, forced shutdown); `undefined` while it was not. */
  #abortReason: unknown;
  #aborted = false;
  /** Settles when the job's handling ended (outcome delivered, dropped or released). */
  done: Promise<void> = Promise.resolve();

  constructor(job: ClaimedJob) {
    this.job = job;
  }

  get state(): HeldState {
    return this.#state;
  }

  /**
   * The handler's `ctx.signal`: aborted (with the reason) on cancel, lease loss and forced
   * shutdown. Read after the abort, it is already aborted with that reason.
   */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  /** Whether the handler's signal is (or, once read, will be) aborted. */
  get aborted(): boolean {
    return this.#aborted;
  }

  get ref(): LeaseRef {
    return { id: this.job.id, leaseToken: this.job.leaseToken };
  }

  /** The lease still counts: heartbeat it (a job whose outcome is in flight included). */
  get leaseLive(): boolean {
    return this.#state === 'held' || this.#state === 'cancelling' || this.#state === 'reporting';
  }

  /** Its outcome will not be delivered: the lease was lost or the job given back. */
  get dropped(): boolean {
    return this.#state === 'lost' || this.#state === 'released';
  }

  /** Moves to `to`, aborting the handler's signal with `reason` when given. */
  to(to: HeldState, reason?: unknown): void {
    if (!TRANSITIONS[this.#state].includes(to)) throw new Error(`job ${this.job.id}: no transition ${this.#state} → ${to}`);
    this.#state = to;
    if (reason !== undefined && !this.#aborted) {
      this.#aborted = true;
      this.#abortReason = reason;
      this.#controller?.abort(reason);
    }
  }
}
