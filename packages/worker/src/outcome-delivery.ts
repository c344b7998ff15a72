/**
 * Delivers what handling a job came to: completions and failures (the HTTP transport coalesces
 * the ones issued together into one request), retried while the control plane is unavailable and
 * the lease may still hold, and releases, in chunks the internal API accepts.
 */
import { backoffDelayMs, type BackoffPolicy } from '@pgdispatch/core/backoff';
import { isDispatchError } from '@pgdispatch/core/errors';
import { LIMITS } from '@pgdispatch/core/internal-api';
import type { Logger } from '@pgdispatch/core/log';
import type { ItemRefusal, LeaseOutcome, Transport } from '@pgdispatch/core/transport';
import type { ClaimedJob } from '@pgdispatch/core/types';
import type { HeldJob, JobOutcome } from './held-job.js';
import type { Verdict } from './job-runner.js';
import { toJobError } from './json.js';
import { abortableSleep, chunk } from '@pgdispatch/core/timing';

/** Tries to deliver a job outcome when the control plane is unavailable (leases outlive a blip). */
const REPORT_ATTEMPTS = 6;
const REPORT_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 10_000 };

export class OutcomeDelivery {
  /** Set when the shutdown grace period ran out: reports stop retrying. */
  forced = false;

  constructor(private readonly transport: Transport, private readonly log: Logger) {}

  /** Reports a complete or fail verdict of a job in state `reporting`. Never throws. */
  report(held: HeldJob, verdict: Extract<Verdict, { kind: 'complete' | 'fail' }>): Promise<JobOutcome> {
    if (verdict.kind === 'complete') return this.#complete(held, verdict.result);
    const error = toJobError(verdict.error, verdict.retryable);
    return this.#deliver(held, async () => {
      const { job } = held;
      const out = await this.transport.fail({ id: job.id, leaseToken: job.leaseToken, error, retryable: verdict.retryable });
      if (!out.ok) return this.refused(held, out, 'fail');
      const cancelled = out.state === 'cancelled';
      this.log[cancelled ? 'info' : 'warn'](cancelled ? 'job cancelled' : 'job failed', {
        jobId: job.id, task: job.task, attempt: job.attempt, state: out.state, retryable: verdict.retryable, error: error.message,
      });
      return cancelled ? 'cancelled' : 'failed';
    });
  }

  /**
   * The common path, made cheap: one call and one await per job; the retry loop (and its
   * closure) only once the first attempt threw.
   */
  async #complete(held: HeldJob, result: unknown): Promise<JobOutcome> {
    const { job } = held;
    let out: LeaseOutcome;
    try {
      out = await this.transport.complete({ id: job.id, leaseToken: job.leaseToken, result });
    } catch (err) {
      const send = async (): Promise<JobOutcome> => this.#completed(held, await this.transport.complete({ id: job.id, leaseToken: job.leaseToken, result }));
      return this.#deliver(held, send, { err });
    }
    return this.#completed(held, out);
  }

  #completed(held: HeldJob, out: LeaseOutcome): JobOutcome {
    if (!out.ok) return this.refused(held, out, 'complete');
    this.log.debug('job succeeded', { jobId: held.job.id, task: held.job.task, attempt: held.job.attempt });
    return 'succeeded';
  }

  /**
   * A refused outcome is final; sending it again would get the same answer. `lease_lost`: the job
   * is someone else's. A value that could not be stored (`details.state`): the control plane
   * recorded the job in that state (failed, non-retryable), so it is not run again. Anything else
   * (forbidden: a credential that does not cover the job's queue) leaves the job to its lease.
   */
  refused(held: HeldJob, r: ItemRefusal, when: string): JobOutcome {
    if (r.code === 'lease_lost') return this.lost(held, when);
    const state = (r.details as { state?: unknown } | undefined)?.state;
    const { job } = held;
    if (state === 'failed' || state === 'cancelled') {
      this.log.error(`job outcome could not be stored; the control plane recorded the job ${state}`, { jobId: job.id, task: job.task, code: r.code, reason: r.message });
      return state;
    }
    this.log.error('job outcome refused; the job will run again once its lease expires', { jobId: job.id, task: job.task, code: r.code, reason: r.message, when });
    return 'unreported';
  }

  /** The outcome of a job whose lease is gone: nothing it reports counts. */
  lost(held: HeldJob, when: string): JobOutcome {
    this.log.warn('lease lost; outcome dropped (the job is or will be run elsewhere)', { jobId: held.job.id, task: held.job.task, when });
    return 'lease_lost';
  }

  /** Gives jobs back to their queues without spending an attempt; resolves with how many the control plane took back. */
  async release(jobs: readonly ClaimedJob[]): Promise<number> {
    let released = 0;
    for (const part of chunk(jobs, LIMITS.batchItems)) {
      try {
        const outcomes = await this.transport.release(part.map((j) => ({ id: j.id, leaseToken: j.leaseToken })));
        const lost = outcomes.filter((o) => !o.ok).map((o) => o.id);
        released += outcomes.length - lost.length;
        this.log.info('released jobs to their queues', { released: outcomes.length - lost.length, leaseLost: lost });
      } catch (err) {
        this.log.error('release failed; these jobs run again once their leases expire', { err, jobIds: part.map((j) => j.id) });
      }
    }
    return released;
  }

  /**
   * Sends until answered, retrying while the control plane is unavailable; `first` is the error
   * of a first attempt the caller already made.
   */
  async #deliver(held: HeldJob, send: () => Promise<JobOutcome>, first?: { err: unknown }): Promise<JobOutcome> {
    let err: unknown;
    if (first) err = first.err;
    else {
      try {
        return await send();
      } catch (e) {
        err = e;
      }
    }
    for (let attempt = 1; ; attempt++) {
      const given = this.#afterError(held, err, attempt);
      if (given !== undefined) return given;
      await abortableSleep(backoffDelayMs(attempt, REPORT_BACKOFF));
      try {
        return await send();
      } catch (e) {
        err = e;
      }
    }
  }

  /** What a failed send of attempt `attempt` comes to, or `undefined` to try again. */
  #afterError(held: HeldJob, err: unknown, attempt: number): JobOutcome | undefined {
    if (isDispatchError(err, 'lease_lost')) return this.lost(held, 'report');
    // A single-job route answers a refused item as an error: the same rules as per item.
    if (isDispatchError(err) && !err.retryable && err.code !== 'unavailable' && err.code !== 'internal') {
      return this.refused(held, { id: held.job.id, ok: false, code: err.code as ItemRefusal['code'], message: err.message, details: err.details }, 'report');
    }
    if (!(isDispatchError(err) && err.retryable && attempt < REPORT_ATTEMPTS && !this.forced)) {
      this.log.error('job outcome not delivered; the job will run again once its lease expires', { err, jobId: held.job.id });
      return 'unreported';
    }
    return undefined;
  }
}
