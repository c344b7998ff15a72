import type { ClaimedJob } from '@pgdispatch/core/types';
import type { Sql } from '@pgdispatch/engine/db';
import { jobClaim } from '@pgdispatch/engine/queries/job-claim';
import { jobReleaseMany } from '@pgdispatch/engine/queries/job-release';
import { listenForJobs, type Listener } from '@pgdispatch/engine/notify';
import type { Logger } from '@pgdispatch/core/log';

export interface DispatcherOptions {
  sql: Sql;
  /**
   * A small pool opened with `genericPlans` (engine db.ts), for the claims whose generic plan is
   * their custom plan: a gated claim is then one statement, not a transaction (ClaimParams.generic).
   * Unset (behind PgBouncer, in tests): every claim goes through `sql`.
   */
  claimSql?: Sql;
  /** Connection for LISTEN (a direct URL behind PgBouncer); default `sql`. */
  listenSql?: Sql;
  /** Lease length in ms given to every claim. */
  leaseMs: number;
  /** Most jobs one claim statement takes. */
  batchMax: number;
  /** Fallback poll interval in ms while requests wait; NOTIFY is the fast path. */
  pollIntervalMs: number;
  log: Logger;
  /** Observers for metrics; all optional. */
  onClaimRound?: (claimed: number, demand: number) => void;
  onRelease?: (count: number) => void;
  /** A rate-limited queue's token bucket cut a claim short (the claim waits for tokens). */
  onRateLimited?: (queue: string) => void;
}

/** Delay before a failed claim round is tried again, in ms. */
const CLAIM_RETRY_MS = 100;

interface Waiter {
  queues: '*' | string[];
  tasks: '*' | string[];
  /** Queue set and task set: waiters with equal keys share one claim statement. */
  key: string;
  max: number;
  jobs: ClaimedJob[];
  resolve: (jobs: ClaimedJob[]) => void;
  done: boolean;
  /** A claim for this waiter is in flight: its deadline waits for the claim's result. */
  claiming: boolean;
  /** The deadline passed (or `waitMs` was 0): answer after the claim in flight, with what it got. */
  expired: boolean;
  timer?: NodeJS.Timeout;
  signal: AbortSignal | undefined;
  onAbort?: () => void;
}

/**
 * The batch-pull dispatcher. Executors (HTTP long-polls or the in-process transport) wait here;
 * one claim statement per round serves every waiter with the same queue set and task set (so
 * workers of one deployment, which declare the same tasks, still coalesce), limited to their
 * total outstanding demand, so nothing is claimed without a requester. Claimed jobs whose
 * requester went away before delivery are released at once (no attempt spent).
 *
 * Rounds are serial: while one runs, new arrivals and wake-ups set `again` and the next round
 * takes everything that gathered meanwhile — this is what coalesces many pullers into one claim.
 */
export class Dispatcher {
  private readonly waiters = new Set<Waiter>();
  private running = false;
  private again = false;
  private stopped = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private listener: Listener | undefined;
  /**
   * Waiter keys whose last claim came back short → the queues woken since (`null`: none, nothing
   * claimable until a wake-up). A drained key woken for some queues claims just those: the rest of
   * its queue set had nothing at its last claim and nothing announced more since. For a `*` worker
   * whose limited queue got a slot back, that is the one limited claim instead of it plus a claim
   * of every other queue (CLAIM_TASKS_EXCEPT_SQL, planned per execution: 1–4 ms per refill on the
   * shared machine).
   */
  private readonly drained = new Map<string, Set<string> | null>();
  /**
   * Keys whose claim is in flight → the queues woken meanwhile (`*`: everything). Such a wake may
   * be for a commit the claim's snapshot did not see, so that claim must not mark those queues
   * drained (before, it marked the key, and the wake-up was lost until the poll).
   */
  private readonly inFlight = new Map<string, Set<string> | '*'>();
  /** Per rate-limited queue: the timer that wakes it when its bucket's next token is due. */
  private readonly tokenTimers = new Map<string, { at: number; timer: NodeJS.Timeout }>();

  constructor(private readonly opts: DispatcherOptions) {}

  async start(): Promise<void> {
    this.listener = await listenForJobs(this.opts.listenSql ?? this.opts.sql, (queue) => this.wake(queue), () => this.wake());
    this.pollTimer = setInterval(() => this.wake(), this.opts.pollIntervalMs);
    this.pollTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const t of this.tokenTimers.values()) clearTimeout(t.timer);
    this.tokenTimers.clear();
    for (const w of [...this.waiters]) this.finish(w);
    await this.listener?.stop().catch(() => {});
    while (this.running) await new Promise((r) => setTimeout(r, 5));
  }

  /** Requests currently waiting, and the total jobs they want. */
  demand(): { waiters: number; jobs: number; queues: Set<string> } {
    let jobs = 0;
    const queues = new Set<string>();
    for (const w of this.waiters) {
      jobs += w.max - w.jobs.length;
      if (w.queues === '*') queues.add('*');
      else for (const q of w.queues) queues.add(q);
    }
    return { waiters: this.waiters.size, jobs, queues };
  }

  /**
   * Waits up to `waitMs` for up to `max` jobs of `queues`. Resolves with what the first successful
   * round delivered (possibly fewer than `max`), or [] on timeout, abort or stop. `waitMs: 0`
   * means one round: claim what is claimable now and answer at once. A deadline that passes
   * while a claim for the waiter is in flight waits for that claim, so its jobs are delivered
   * rather than claimed and released again.
   */
  request(req: { queues: '*' | string[]; tasks?: '*' | string[]; max: number; waitMs: number; signal?: AbortSignal }): Promise<ClaimedJob[]> {
    if (this.stopped || req.max <= 0 || req.signal?.aborted) return Promise.resolve([]);
    const queues = normalise(req.queues);
    const tasks = normalise(req.tasks ?? '*');
    if (queues.length === 0 || tasks.length === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const key = `${setKey(queues)}|${setKey(tasks)}`;
      const w: Waiter = {
        queues, tasks, key, max: req.max, jobs: [], resolve, done: false, claiming: false, expired: req.waitMs <= 0, signal: req.signal,
      };
      if (!w.expired) w.timer = setTimeout(() => this.expire(w), req.waitMs);
      if (req.signal) {
        w.onAbort = () => this.finish(w);
        req.signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiters.add(w);
      // A drained key stays drained for a new waiter: more demand does not make more jobs
      // claimable, and every change that does wakes the key (NOTIFY, a local commit, a token
      // timer, the poll for jobs coming due). Clearing it made every re-dequeue after a delivery
      // claim again and find nothing: in role all with a limited queue, one extra claim per refill
      // (~7 ms, a `*` claim of the other queues included, strace and a trace of role all).
      this.schedule();
    });
  }

  /**
   * Wake-up for `queue` (NOTIFY, a local commit, a due token) or for everything (the poll timer,
   * a reconnect: no name). Clears the drained mark of every key whose queue set includes the
   * queue (`*` includes all), and flags such keys' claims in flight so they do not set it again.
   * Callers wake only for something that happened — a job became runnable, a running slot of a
   * limited queue was freed, a token came due — never because a claim came back empty: that is
   * what keeps a full limited queue from spinning.
   */
  wake(queue?: string): void {
    const hit = (key: string) => {
      if (queue === undefined) return true;
      const queues = key.slice(0, key.indexOf('|'));
      return queues === '*' || queues.split(',').includes(queue);
    };
    for (const [key, woken] of this.drained) {
      if (!hit(key)) continue;
      if (queue === undefined) this.drained.delete(key);
      else this.drained.set(key, (woken ?? new Set()).add(queue));
    }
    for (const [key, woken] of this.inFlight) {
      if (!hit(key)) continue;
      if (queue === undefined || woken === '*') this.inFlight.set(key, '*');
      else woken.add(queue);
    }
    if (this.waiters.size > 0) this.schedule();
  }

  /** wake() for each queue a local commit made claimable (enqueue, completion, failure, release). */
  wakeQueues(queues: Iterable<string>): void {
    for (const q of queues) this.wake(q);
  }

  private schedule(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    // setImmediate lets every request that arrives in this I/O turn join the same round.
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        await this.round();
      } while (this.again && !this.stopped);
    } finally {
      this.running = false;
    }
  }

  private async round(): Promise<void> {
    const groups = new Map<string, Waiter[]>();
    for (const w of this.waiters) {
      // A waitMs-0 waiter is answered after one claim, so a drained mark must not skip it.
      if (w.done || (this.drained.get(w.key) === null && !w.expired)) continue;
      const g = groups.get(w.key);
      if (g) g.push(w);
      else groups.set(w.key, [w]);
    }
    for (const [key, group] of groups) {
      const demand = group.reduce((n, w) => n + w.max - w.jobs.length, 0);
      const limit = Math.min(demand, this.opts.batchMax);
      if (limit <= 0) continue;
      for (const w of group) w.claiming = true;
      // Drained and woken for some queues: claim those only (a waitMs-0 waiter of a drained key
      // with no wake-up gets the full claim it was promised).
      const woken = this.drained.get(key);
      const queues = woken ? [...woken] : group[0]!.queues;
      this.drained.delete(key);
      const meanwhile = new Set<string>();
      this.inFlight.set(key, meanwhile);
      try {
        const jobs = await jobClaim(this.opts.sql, {
          queues, tasks: group[0]!.tasks, limit, leaseMs: this.opts.leaseMs, onRateLimited: this.#rateLimited, ...(this.opts.claimSql && { generic: this.opts.claimSql }),
        });
        this.opts.onClaimRound?.(jobs.length, demand);
        // Queues woken while the claim ran stay to be claimed (wake() already asked for another round).
        const during = this.inFlight.get(key) ?? meanwhile;
        if (during !== '*') {
          if (jobs.length < limit) this.drained.set(key, during.size > 0 ? during : null);
          else {
            // More may be waiting; the next round serves the rest of the demand (the same queues
            // again after a targeted claim, the whole set after a full one).
            this.again = true;
            if (woken) this.drained.set(key, new Set([...woken, ...during]));
          }
        } else if (jobs.length >= limit) this.again = true;
        this.inFlight.delete(key);
        await this.deliver(group, jobs);
      } catch (err) {
        // Database trouble: the waiters keep waiting (until their deadline) and the claim is
        // retried soon. Waiting for the poll timer cost up to POLL_INTERVAL_MS after PostgreSQL
        // came back; the pool's own reconnect backoff (≤ 250 ms, engine/db.ts) already paces the attempts.
        this.opts.log.warn('claim failed', { error: String(err) });
        this.retrySoon();
      } finally {
        this.inFlight.delete(key);
        for (const w of group) {
          w.claiming = false;
          if (w.expired) this.finish(w);
        }
      }
    }
  }

  /**
   * The token bucket cut a claim short: wake the queue when its next token is due (rounded up by a
   * millisecond so the bucket holds the whole token by then) instead of on the poll, which held a
   * queue limited to 10 per second to 1 claim per POLL_INTERVAL_MS. One timer per queue, the
   * earliest due; it fires once, and a claim it causes that is cut short again sets the next.
   */
  readonly #rateLimited = (queue: string, nextTokenMs: number): void => {
    this.opts.onRateLimited?.(queue);
    if (this.stopped) return;
    const at = Date.now() + Math.ceil(nextTokenMs) + 1;
    const pending = this.tokenTimers.get(queue);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.tokenTimers.delete(queue);
      this.wake(queue);
    }, at - Date.now());
    timer.unref();
    this.tokenTimers.set(queue, { at, timer });
  };

  /** One retry of the claim rounds CLAIM_RETRY_MS after a failure, while anyone waits. */
  private retrySoon(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.wake();
    }, CLAIM_RETRY_MS);
    this.retryTimer.unref();
  }

  /** The waiter's deadline: answer now, or right after the claim in flight for it. */
  private expire(w: Waiter): void {
    w.expired = true;
    if (!w.claiming) this.finish(w);
  }

  private async deliver(group: Waiter[], jobs: ClaimedJob[]): Promise<void> {
    const orphans: ClaimedJob[] = [];
    let i = 0;
    for (const job of jobs) {
      while (i < group.length && (group[i]!.done || group[i]!.jobs.length >= group[i]!.max)) i++;
      const w = group[i];
      // A group shares one queue set and task set, so any waiter in it can take any job the claim returned.
      if (w) w.jobs.push(job);
      else orphans.push(job);
    }
    for (const w of group) if (w.jobs.length > 0) this.finish(w);
    if (orphans.length > 0) await this.release(orphans);
  }

  /** Returns jobs claimed for requesters that went away; no attempt is spent. */
  async release(jobs: ClaimedJob[]): Promise<void> {
    if (jobs.length === 0) return;
    try {
      await jobReleaseMany(this.opts.sql, { items: jobs.map((j) => ({ id: j.id, leaseToken: j.leaseToken })), onWake: (qs) => this.wakeQueues(qs) });
      this.opts.onRelease?.(jobs.length);
    } catch (err) {
      // The lease reaper returns them when their lease expires.
      this.opts.log.warn('release failed; jobs return when their lease expires', { error: String(err), count: jobs.length });
    }
  }

  private finish(w: Waiter): void {
    if (w.done) return;
    w.done = true;
    this.waiters.delete(w);
    if (w.timer) clearTimeout(w.timer);
    if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
    if (w.signal?.aborted && w.jobs.length > 0) {
      const jobs = w.jobs;
      w.jobs = [];
      void this.release(jobs);
    }
    w.resolve(w.jobs);
  }
}

/** `*`, or the distinct names sorted (so equal sets make equal keys). */
function normalise(names: '*' | string[]): '*' | string[] {
  return names === '*' ? '*' : [...new Set(names)].sort();
}

function setKey(names: '*' | string[]): string {
  return names === '*' ? '*' : names.join(',');
}
