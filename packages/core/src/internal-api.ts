/**
 * The internal API contract between workers and the control plane (`/internal/v1`): route paths
 * and the zod schemas of every request and response body. It lives in core because both sides
 * use it: the worker's HttpTransport and the api's internal routes import these same definitions
 * (`@pgdispatch/core/internal-api`), so the two cannot drift apart silently, and neither imports
 * the other. The in-process side of the same contract is the `Transport` interface (transport.ts).
 *
 * Conventions: camelCase JSON, `Authorization: Bearer <worker token>`; every lease-scoped call
 * names its `leaseToken`; a stale one answers `409 { error: { code: 'lease_lost' } }`. Request
 * schemas are strict (unknown fields are a 400), response schemas tolerate additions so an api
 * can grow a field before its workers learn it. Dates travel as ISO strings.
 */
import { z } from 'zod';
import { enqueueFields } from './enqueue-limits.js';
import { queueNameSchema } from './queue-name.js';
import { TASK_NAME_PATTERN } from './task-spec.js';
import { JOB_STATES } from './types.js';
import { ITEM_REFUSAL_CODES } from './transport.js';

export const INTERNAL_PREFIX = '/internal/v1';

/** Route patterns in hono syntax (`:id` is the job id). */
export const INTERNAL_ROUTES = {
  dequeue: `${INTERNAL_PREFIX}/dequeue`,
  heartbeat: `${INTERNAL_PREFIX}/heartbeat`,
  release: `${INTERNAL_PREFIX}/release`,
  complete: `${INTERNAL_PREFIX}/jobs/:id/complete`,
  /** Many completions in one request and one statement (what the HttpTransport sends). */
  completeMany: `${INTERNAL_PREFIX}/complete`,
  /** Many failures in one request (retry schedules are still per job). */
  failMany: `${INTERNAL_PREFIX}/fail`,
  fail: `${INTERNAL_PREFIX}/jobs/:id/fail`,
  stepsLoad: `${INTERNAL_PREFIX}/jobs/:id/steps/load`,
  stepSave: `${INTERNAL_PREFIX}/jobs/:id/steps`,
  progress: `${INTERNAL_PREFIX}/jobs/:id/progress`,
  children: `${INTERNAL_PREFIX}/jobs/:id/children`,
} as const;
export type InternalRoute = keyof typeof INTERNAL_ROUTES;

/** A concrete path for `route` with `:id` filled in. */
export function internalPath(route: InternalRoute, id?: number): string {
  const pattern: string = INTERNAL_ROUTES[route];
  if (!pattern.includes(':id')) return pattern;
  if (id === undefined) throw new TypeError(`route ${route} needs a job id`);
  return pattern.replace(':id', String(id));
}

/** Bounds shared by both sides (the worker truncates to them before sending). */
export const LIMITS = {
  /** Most jobs one dequeue may ask for. */
  dequeueMax: 1_000,
  /** Longest long-poll a request may ask for, in ms (the api clamps further to its own setting). */
  waitMsMax: 300_000,
  /** Most task names one dequeue may declare. */
  tasksMax: 1_000,
  /** Most items in one heartbeat or release call. */
  batchItems: 10_000,
  /** Step names and child keys, in characters. */
  nameMax: 200,
  errorMessageMax: 8_192,
  errorStackMax: 16_384,
} as const;

// ---- building blocks ---------------------------------------------------------------------

/** Job ids are bigint in Postgres and JSON numbers here (exact up to 2^53). */
export const jobIdSchema = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
/** `:id` path parameter: digits only, so `1e3`, `0x10` or ` 1` are rejected rather than coerced. */
export const jobIdParamSchema = z.object({
  id: z
    .string()
    .regex(/^[1-9][0-9]{0,15}$/, { message: 'must be a positive integer' })
    .transform(Number)
    .pipe(jobIdSchema),
});
/** Lease tokens are uuids; validated here so a malformed one is a 400, not a database cast error. */
export const leaseTokenSchema = z.guid();
export const leaseRefSchema = z.strictObject({ id: jobIdSchema, leaseToken: leaseTokenSchema });
const nameSchema = z.string().min(1).max(LIMITS.nameMax);

export const jobErrorSchema = z.strictObject({
  message: z.string().max(LIMITS.errorMessageMax),
  name: z.string().max(200).optional(),
  stack: z.string().max(LIMITS.errorStackMax).optional(),
  details: z.unknown().optional(),
  retryable: z.boolean().optional(),
});

export const childJobSchema = z.strictObject({
  queue: queueNameSchema,
  task: enqueueFields.task,
  payload: z.unknown().optional(),
  priority: enqueueFields.priority.optional(),
  delayMs: enqueueFields.delayMs.optional(),
  maxAttempts: enqueueFields.maxAttempts.optional(),
});

/** The per-item answer of a fenced write whose lease is gone (the other items still go through). */
/** A refused item (transport.ts ItemRefusal): lease_lost, forbidden, or a value that could not be stored. */
const refusedItemSchema = z.object({
  id: jobIdSchema,
  ok: z.literal(false),
  code: z.enum(ITEM_REFUSAL_CODES),
  message: z.string().optional(),
  details: z.unknown().optional(),
});
const leaseOutcomeSchema = z.discriminatedUnion('ok', [z.object({ id: jobIdSchema, ok: z.literal(true) }), refusedItemSchema]);
const okSchema = z.object({ ok: z.literal(true) });

// ---- requests ----------------------------------------------------------------------------

export const dequeueRequestSchema = z.strictObject({
  queues: z.union([z.literal('*'), z.array(queueNameSchema).min(1).max(1_000)]),
  /** Tasks the worker can run; omitted means `*` (workers that predate task routing). */
  tasks: z.union([z.literal('*'), z.array(z.string().regex(TASK_NAME_PATTERN)).min(1).max(LIMITS.tasksMax)]).optional(),
  max: z.number().int().min(1).max(LIMITS.dequeueMax),
  waitMs: z.number().int().min(0).max(LIMITS.waitMsMax),
});
export const heartbeatRequestSchema = z.strictObject({ items: z.array(leaseRefSchema).min(1).max(LIMITS.batchItems) });
export const releaseRequestSchema = z.strictObject({ items: z.array(leaseRefSchema).min(1).max(LIMITS.batchItems) });
export const completeRequestSchema = z.strictObject({ leaseToken: leaseTokenSchema, result: z.unknown().optional() });
export const completeManyRequestSchema = z.strictObject({
  items: z.array(z.strictObject({ id: jobIdSchema, leaseToken: leaseTokenSchema, result: z.unknown().optional() })).min(1).max(LIMITS.batchItems),
});
export const failRequestSchema = z.strictObject({ leaseToken: leaseTokenSchema, error: jobErrorSchema, retryable: z.boolean() });
export const failManyRequestSchema = z.strictObject({
  items: z.array(z.strictObject({ id: jobIdSchema, leaseToken: leaseTokenSchema, error: jobErrorSchema, retryable: z.boolean() })).min(1).max(LIMITS.batchItems),
});
export const stepsLoadRequestSchema = z.strictObject({ leaseToken: leaseTokenSchema });
export const stepSaveRequestSchema = z.strictObject({ leaseToken: leaseTokenSchema, name: nameSchema, result: z.unknown().optional() });
export const progressRequestSchema = z.strictObject({ leaseToken: leaseTokenSchema, data: z.unknown().optional() });
export const childEnqueueRequestSchema = z.strictObject({ leaseToken: leaseTokenSchema, key: nameSchema, job: childJobSchema });

// ---- responses ---------------------------------------------------------------------------

export const claimedJobSchema = z.object({
  id: jobIdSchema,
  queue: z.string(),
  task: z.string(),
  payload: z.unknown(),
  attempt: z.number().int(),
  maxAttempts: z.number().int(),
  leaseToken: z.string(),
  /** ISO string on the wire, a Date once parsed. */
  leaseExpiresAt: z.iso.datetime({ offset: true }).transform((s) => new Date(s)),
});
export const dequeueResponseSchema = z.object({ jobs: z.array(claimedJobSchema) });
export const heartbeatResponseSchema = z.object({
  items: z.array(
    z.discriminatedUnion('ok', [
      z.object({ id: jobIdSchema, ok: z.literal(true), cancelRequested: z.boolean() }),
      refusedItemSchema,
    ]),
  ),
});
export const releaseResponseSchema = z.object({ items: z.array(leaseOutcomeSchema) });
/** Per item: ok, or refused (lease_lost, forbidden, a result that could not be stored); the others still complete. */
export const completeManyResponseSchema = z.object({ items: z.array(leaseOutcomeSchema) });
export const failManyResponseSchema = z.object({
  items: z.array(
    z.discriminatedUnion('ok', [
      z.object({ id: jobIdSchema, ok: z.literal(true), state: z.enum(JOB_STATES) }),
      refusedItemSchema,
    ]),
  ),
});
export const stepsLoadResponseSchema = z.object({ steps: z.record(z.string(), z.unknown()) });
export const stepSaveResponseSchema = okSchema;
export const progressResponseSchema = okSchema;
/** 201 when the child was created, 200 when the key matched an earlier one. */
export const childEnqueueResponseSchema = z.object({ jobId: jobIdSchema, created: z.boolean() });
