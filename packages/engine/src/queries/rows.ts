/**
 * Column list of a full job row, aliased to the Job shape (no per-row transform on hot paths).
 * It leaves out lease_token on purpose: a token is the right to write a job's outcome, so it is
 * handed only to the claimer (CLAIMED_RETURNING) and never to public reads (issue #10: a read key
 * plus any worker token could complete any running job).
 */
export const JOB_COLUMNS = `id, queue, task, payload, state, priority, run_at as "runAt", attempt,
  max_attempts as "maxAttempts", lease_expires_at as "leaseExpiresAt",
  cancel_requested as "cancelRequested", idempotency_key as "idempotencyKey", result,
  last_error as "lastError", parent_id as "parentId", created_at as "createdAt",
  updated_at as "updatedAt", finished_at as "finishedAt", unique_key as "uniqueKey",
  dead_letter_from as "deadLetterFrom"`;

/** RETURNING list of a claim (`update jobs j … returning`), aliased to ClaimedJob. */
export const CLAIMED_RETURNING = `j.id, j.queue, j.task, j.payload, j.attempt, j.max_attempts as "maxAttempts",
  j.lease_token as "leaseToken", j.lease_expires_at as "leaseExpiresAt"`;
