import { Cron } from 'croner';

/**
 * Schedules: cron expressions, their next-run arithmetic and the catch-up plan of a due tick.
 * Pure (no I/O, no clock): every function takes "now" from its caller, who reads it from the
 * database (`select now()`), so pods with skewed clocks agree on which ticks are due.
 *
 * Cron grammar and DST rules are croner's (no hand-written grammar): 5 fields, or 6 with seconds
 * first. DST follows Vixie cron (croner `fixedTimeRule: 'no-wildcard'`): a fixed local time that
 * does not exist (spring forward) fires once, at the first valid time after the gap; a fixed time
 * that occurs twice (fall back) fires once, at its first occurrence. Interval expressions (`*`,
 * steps) keep their real-time cadence through the repeated hour and skip the missing one.
 */

export const CATCH_UP_POLICIES = ['all', 'latest', 'none'] as const;
/** What happens to ticks missed while no scheduler ran (older than the grace window). */
export type CatchUpPolicy = (typeof CATCH_UP_POLICIES)[number];

/** `all` fires at most this many missed ticks in one catch-up: the newest ones; older are skipped. */
export const CATCH_UP_MAX_TICKS = 100;
/** Ticks that are still on time (within the grace window) fired by one claim, at most. */
const ON_TIME_MAX_TICKS = 1000;
/** Skipped ticks are counted by walking the expression, up to this many per catch-up. */
const SKIP_COUNT_MAX = 1000;

/**
 * The fields a caller sets on a schedule (everything but its name and bookkeeping): the POST
 * /v1/schedules body without `name`, and what the engine validates and stores.
 */
export interface ScheduleFields {
  /** 5 fields, or 6 with seconds first. */
  cron: string;
  /** IANA zone the expression is read in (default UTC). */
  timeZone?: string;
  queue: string;
  task: string;
  payload?: unknown;
  /** Lower runs first (default 0). */
  priority?: number;
  /** null or unset = the queue's default. */
  maxAttempts?: number | null;
  /** Default true. */
  enabled?: boolean;
  /** Ticks missed while no api pod ran: all (the newest 100), latest (default), none. */
  catchUp?: CatchUpPolicy;
}

export interface Schedule {
  name: string;
  /** 5 fields, or 6 with seconds first. */
  cron: string;
  /** IANA time zone the expression is read in (default UTC). */
  timeZone: string;
  queue: string;
  task: string;
  payload: unknown;
  priority: number;
  /** null = the queue's default. */
  maxAttempts: number | null;
  enabled: boolean;
  catchUp: CatchUpPolicy;
  /** The next tick not yet fired (the database's time). */
  nextRunAt: Date;
  /** The newest tick fired so far, and its job. */
  lastTickAt: Date | null;
  lastJobId: number | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A cron expression read in a time zone; construct with `parseCron` (throws on bad input). */
export interface CronExpression {
  /** The first tick strictly after `after`, or null if there is none. */
  next(after: Date): Date | null;
  /** Up to `n` ticks strictly before `before`, newest first. */
  previous(before: Date, n: number): Date[];
}

/** Why `expr` in `timeZone` is not a usable schedule, or undefined when it is. */
export function cronProblem(expr: string, timeZone: string): { field: 'cron' | 'timeZone'; message: string } | undefined {
  if (typeof timeZone !== 'string' || timeZone.length === 0) return { field: 'timeZone', message: 'must be an IANA time zone name, e.g. Europe/Berlin' };
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    return { field: 'timeZone', message: `unknown time zone ${JSON.stringify(timeZone).slice(0, 80)}` };
  }
  if (typeof expr !== 'string' || expr.length > 200) return { field: 'cron', message: 'must be a cron expression of at most 200 characters' };
  const fields = expr.trim().split(/\s+/).filter(Boolean).length;
  if (fields !== 5 && fields !== 6) return { field: 'cron', message: `must have 5 fields (minute hour day month weekday) or 6 (seconds first), not ${fields}` };
  let cron: Cron;
  try {
    cron = newCron(expr, timeZone);
  } catch (err) {
    return { field: 'cron', message: err instanceof Error ? err.message.replace(/^CronPattern: /, '') : 'invalid cron expression' };
  }
  // `0 0 30 2 *` parses but never fires.
  if (cron.nextRun(new Date()) === null) return { field: 'cron', message: 'never fires' };
  return undefined;
}

function newCron(expr: string, timeZone: string): Cron {
  return new Cron(expr.trim(), { timezone: timeZone, paused: true, mode: '5-or-6-parts', fixedTimeRule: 'no-wildcard' });
}

/** Parses a validated expression; throws `Error` with croner's message otherwise (check cronProblem first). */
export function parseCron(expr: string, timeZone: string): CronExpression {
  const cron = newCron(expr, timeZone);
  return {
    next: (after) => cron.nextRun(after),
    previous: (before, n) => cron.previousRuns(n, before).filter((d) => d.getTime() < before.getTime()),
  };
}

export interface TickPlan {
  /** Ticks to enqueue now, oldest first; `late` = missed (older than the grace window), fired by the catch-up policy. */
  fire: { at: Date; late: boolean }[];
  /** Missed ticks the policy dropped (counted up to SKIP_COUNT_MAX). */
  skipped: number;
  /** The first tick strictly after `now`: the schedule's new next-run time. */
  nextRunAt: Date | null;
}

/**
 * Plans a due schedule: every tick in [nextRunAt, now] is either on time (no older than
 * `graceMs`) and always fired, or missed and handled by `policy`:
 * - `all`: fire the newest CATCH_UP_MAX_TICKS missed ticks, skip older ones;
 * - `latest`: fire only the newest missed tick, and only when no on-time tick fires;
 * - `none`: skip every missed tick.
 */
export function planTicks(p: { cron: CronExpression; nextRunAt: Date; now: Date; graceMs: number; policy: CatchUpPolicy }): TickPlan {
  const { cron, nextRunAt, now, policy } = p;
  const cutoff = new Date(now.getTime() - Math.max(0, p.graceMs));
  const fire: { at: Date; late: boolean }[] = [];
  // On time: ticks in (max(nextRunAt - 1 ms, cutoff), now]; `next` is exclusive.
  let t = cron.next(new Date(Math.max(nextRunAt.getTime() - 1, cutoff.getTime())));
  while (t !== null && t.getTime() <= now.getTime() && fire.length < ON_TIME_MAX_TICKS) {
    fire.push({ at: t, late: false });
    t = cron.next(t);
  }
  let skipped = 0;
  if (nextRunAt.getTime() <= cutoff.getTime()) {
    // Missed: ticks in [nextRunAt, cutoff].
    const take = policy === 'all' ? CATCH_UP_MAX_TICKS : policy === 'latest' && fire.length === 0 ? 1 : 0;
    const newestFirst = take > 0 ? cron.previous(new Date(cutoff.getTime() + 1), take).filter((d) => d.getTime() >= nextRunAt.getTime()) : [];
    const missed = [...newestFirst].reverse();
    fire.unshift(...missed.map((at) => ({ at, late: true })));
    // Count what the policy dropped: ticks from nextRunAt (itself a tick: it came from `next`) up
    // to the oldest missed tick that fires, or up to the cutoff when none does.
    const stop = missed[0]?.getTime() ?? cutoff.getTime() + 1;
    for (let s: Date | null = nextRunAt; s !== null && s.getTime() < stop && skipped < SKIP_COUNT_MAX; s = cron.next(s)) skipped++;
  }
  return { fire, skipped, nextRunAt: cron.next(now) };
}
