import { isDispatchError } from '@pgdispatch/core/errors';
import type { Sql } from '@pgdispatch/engine/db';
import { scheduleTick, type TickResult } from '@pgdispatch/engine/queries/schedule-tick';
import type { Logger } from '@pgdispatch/core/log';
import type { Metrics } from './metrics.js';

export interface SchedulerOptions {
  sql: Sql;
  /** How often the loop looks for due schedules, in ms (SCHEDULER_INTERVAL_MS). */
  intervalMs: number;
  /** A tick later than this is missed and follows its schedule's catch-up policy, in ms (SCHEDULER_GRACE_MS). */
  graceMs: number;
  maxPayloadBytes: number;
  log: Logger;
  metrics?: Metrics;
  /** Most schedules claimed in one round (default 1000); the rest wait for the next round. */
  maxPerRound?: number;
  /** Called after every claim that fired or skipped something (tests, logging). */
  onTick?: (r: TickResult) => void;
}

/**
 * The scheduler loop that every api/all process runs. It holds no state about schedules: each
 * round claims due schedules one transaction at a time with `scheduleTick` (row lock, skip
 * locked, idempotency key per tick), so any number of processes can run it side by side and a
 * tick fires once however many there are (docs/architecture.md §16).
 */
export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = true;

  constructor(private readonly opts: SchedulerOptions) {}

  /** Starts the loop; the first round runs at once. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops the loop and waits for a round in flight (its transactions commit or roll back). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** One round: claims due schedules until none is left (or maxPerRound). Returns ticks fired. */
  async runOnce(): Promise<number> {
    const exclude: string[] = [];
    let fired = 0;
    for (let i = 0; i < (this.opts.maxPerRound ?? 1000); i++) {
      let r: TickResult | null;
      try {
        r = await scheduleTick(this.opts.sql, { graceMs: this.opts.graceMs, maxPayloadBytes: this.opts.maxPayloadBytes, exclude });
      } catch (err) {
        const name = isDispatchError(err) ? (err.details as { schedule?: string } | undefined)?.schedule : undefined;
        if (name === undefined) throw err; // database trouble: the next round tries again
        // One schedule that cannot be enqueued must not hold up the others.
        this.opts.log.warn('schedule tick failed', { schedule: name, error: String(err) });
        exclude.push(name);
        continue;
      }
      if (!r) break;
      fired += r.fired.length;
      this.record(r);
    }
    return fired;
  }

  private record(r: TickResult): void {
    const m = this.opts.metrics;
    const late = r.fired.filter((f) => f.late).length;
    if (m) {
      if (r.fired.length - late > 0) m.scheduleTicks.inc({ schedule: r.schedule, outcome: 'fired' }, r.fired.length - late);
      if (late > 0) m.scheduleTicks.inc({ schedule: r.schedule, outcome: 'late' }, late);
      if (r.skipped > 0) m.scheduleTicks.inc({ schedule: r.schedule, outcome: 'skipped' }, r.skipped);
      const created = r.fired.filter((f) => f.created).length;
      if (created > 0) m.enqueued.inc({ queue: r.queue }, created);
    }
    if (late > 0 || r.skipped > 0) this.opts.log.info('schedule caught up', { schedule: r.schedule, late, skipped: r.skipped });
    this.opts.onTick?.(r);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce()
        .then(() => undefined, (err: unknown) => this.opts.log.warn('scheduler round failed', { error: String(err) }))
        .finally(() => this.schedule(this.opts.intervalMs));
    }, delayMs);
    this.timer.unref();
  }
}
