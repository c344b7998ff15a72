/** Every state a job can be in; see docs/architecture.md for the state machine. */
export const JOB_STATES = ['queued', 'running', 'succeeded', 'retry_waiting', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** States from which a job may be claimed once `run_at <= now()`. */
export const CLAIMABLE_STATES: readonly JobState[] = ['queued', 'retry_waiting'];
/** States a job never leaves on its own. */
export const FINAL_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled'];

export interface Job {
  id: number;
  queue: string;
  task: string;
  payload: unknown;
  state: JobState;
  priority: number;
  runAt: Date;
  attempt: number;
  maxAttempts: number;
  /** No lease token here: only the claimer gets it (ClaimedJob); public reads never show it. */
  leaseExpiresAt: Date | null;
  cancelRequested: boolean;
  idempotencyKey: string | null;
  result: unknown;
  lastError: JobError | null;
  parentId: number | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
  /** Unique-while-active key: no other queued/retry_waiting/running job of the queue has it. */
  uniqueKey?: string | null;
  /** Set on a dead-lettered job: the queue it failed in (redrive sends it back there). */
  deadLetterFrom?: string | null;
}

/** A job as handed to an executor: what it needs to run and to fence its writes. */
export interface ClaimedJob {
  id: number;
  queue: string;
  task: string;
  payload: unknown;
  attempt: number;
  maxAttempts: number;
  leaseToken: string;
  leaseExpiresAt: Date;
}

export interface JobError {
  message: string;
  name?: string;
  stack?: string;
  details?: unknown;
  retryable?: boolean;
}

export interface QueuePolicy {
  name: string;
  paused: boolean;
  /** Max jobs of this queue running at once; null = unlimited. */
  concurrencyLimit: number | null;
  defaultMaxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** How long finished jobs are kept, in seconds; null = the server default. */
  retentionSeconds: number | null;
  /** Jobs of this queue that end `failed` move to this queue; null = they stay. */
  deadLetterQueue: string | null;
  /** At most this many claims per rateIntervalMs (token bucket, bursts up to it); null = no limit. */
  rateLimit: number | null;
  /** The interval of rateLimit, in ms (default 1000). */
  rateIntervalMs: number;
}
