import type { JobState } from './types.js';

/** Kinds of durable job events (table `job_events`). */
export const JOB_EVENT_TYPES = ['state', 'cancel_requested', 'progress'] as const;
export type JobEventType = (typeof JOB_EVENT_TYPES)[number];

/** Data of a `state` (or `cancel_requested`) event, written by the trigger on `jobs`. */
export interface JobStateEventData {
  state: JobState;
  attempt: number;
  /** retry_waiting: when the next attempt may run. */
  runAt?: string;
  /** retry_waiting / failed: the recorded error (without its stack). */
  error?: unknown;
}

/**
 * One durable job event. `id` increases monotonically; for one job, ids also increase in commit
 * order (every writer of a job's events holds the job's row lock), so a job stream is totally
 * ordered by id.
 */
export interface JobEvent {
  id: number;
  jobId: number;
  queue: string;
  type: JobEventType;
  /** state events: JobStateEventData; progress: what the task passed to ctx.progress(). */
  data: unknown;
  createdAt: Date;
}
