/**
 * The bounds of an enqueued job's fields, in one place: the public API's request schemas, the
 * internal API's child-job schema and the engine's own check (for callers that skip both, like
 * the scheduler and the benchmarks) all read them from here.
 */
import { z } from 'zod';

export const ENQUEUE_LIMITS = {
  /** Task names, in characters. */
  taskMax: 128,
  /** `priority` is a smallint: lower runs first. */
  priorityMin: -32_768,
  priorityMax: 32_767,
  maxAttemptsMax: 1_000,
  /** Idempotency keys, in characters. */
  idempotencyKeyMax: 255,
  /** Longest start delay the public API accepts, in ms (a year and a day). */
  publicDelayMsMax: 366 * 24 * 3_600_000,
} as const;

/** Zod schemas of the shared fields (describe() them where they appear). */
export const enqueueFields = {
  task: z.string().min(1).max(ENQUEUE_LIMITS.taskMax),
  priority: z.number().int().min(ENQUEUE_LIMITS.priorityMin).max(ENQUEUE_LIMITS.priorityMax),
  /** ms from the database's now(). */
  delayMs: z.number().int().min(0),
  maxAttempts: z.number().int().min(1).max(ENQUEUE_LIMITS.maxAttemptsMax),
  idempotencyKey: z.string().min(1).max(ENQUEUE_LIMITS.idempotencyKeyMax),
};
