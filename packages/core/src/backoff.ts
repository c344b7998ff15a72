/** Retry delay policy for a queue. */
export interface BackoffPolicy {
  /** Delay before the first retry, in milliseconds (default 1000). */
  baseMs: number;
  /** Upper bound for any single delay, in milliseconds (default 1 hour). */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 3_600_000 };

/**
 * Exponential backoff with full jitter (AWS architecture blog): a uniform draw in
 * [0, min(max, base * 2^(attempt-1))]. Full jitter spreads a thundering herd of retries best.
 * `attempt` is the attempt that just failed (1-based). `random` is injectable for tests.
 */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  return Math.floor(random() * backoffCeilingMs(attempt, policy));
}

/** The jitter window's upper bound for `attempt` (1-based), capped at `policy.maxMs`. */
export function backoffCeilingMs(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  const exp = Math.min(Math.max(attempt, 1) - 1, 52);
  return Math.min(policy.maxMs, policy.baseMs * 2 ** exp);
}
