/**
 * The batched lease heartbeat: one call every `intervalMs` carries every live lease this worker
 * holds; the replies move jobs to `lost` or `cancelling` (aborting their handlers' signals).
 */
import { leaseLost } from '@pgdispatch/core/errors';
import { LIMITS } from '@pgdispatch/core/internal-api';
import type { Logger } from '@pgdispatch/core/log';
import type { Transport } from '@pgdispatch/core/transport';
import { JobCancelledError } from './errors.js';
import type { HeldJob } from './held-job.js';
import { chunk } from '@pgdispatch/core/timing';

export class Heartbeat {
  #timer: NodeJS.Timeout | undefined;
  #beating = false;
  /** Heartbeat calls that failed (the leases may expire if this persists). */
  errors = 0;

  constructor(private readonly opts: { transport: Transport; log: Logger; intervalMs: number; held: () => Iterable<HeldJob> }) {}

  start(): void {
    this.#timer = setInterval(() => void this.beat(), this.opts.intervalMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One round of heartbeats; a slow reply makes the next tick skip rather than overlap. */
  async beat(): Promise<void> {
    if (this.#beating) return;
    // Not a job whose outcome was sent (state reporting): its lease needs no extending, and a
    // heartbeat racing the complete of the same row was one half of the deadlock of issue #10.
    const live = [...this.opts.held()].filter((h) => h.leaseLive && h.state !== 'reporting');
    if (live.length === 0) return;
    this.#beating = true;
    try {
      for (const part of chunk(live, LIMITS.batchItems)) {
        const replies = await this.opts.transport.heartbeat(part.map((h) => h.ref));
        // Replies come in request order, one per item (the contract; the conformance suite checks
        // it): matching by position keeps two leases on one job (a re-claim) apart.
        part.forEach((h, i) => {
          const r = replies[i];
          if (r?.id === h.job.id) this.#apply(h, r);
        });
      }
    } catch (err) {
      this.errors++;
      this.opts.log.warn('heartbeat failed; leases may expire if this persists', { err, jobs: live.length });
    } finally {
      this.#beating = false;
    }
  }

  #apply(h: HeldJob, r: { ok: true; cancelRequested: boolean } | { ok: false }): void {
    // A job whose outcome is in flight may simply be finished by now: not a lost lease.
    if (h.state === 'reporting' || h.dropped) return;
    if (!r.ok) {
      h.to('lost', leaseLost(h.job.id));
      this.opts.log.warn('lease lost; aborting the handler', { jobId: h.job.id, task: h.job.task });
    } else if (r.cancelRequested && h.state === 'held') {
      h.to('cancelling', new JobCancelledError(h.job.id));
      this.opts.log.info('cancel requested; aborting the handler', { jobId: h.job.id, task: h.job.task });
    }
  }
}
