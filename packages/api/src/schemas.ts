import { z } from 'zod';
import type { Context } from 'hono';
import { invalidRequest } from '@pgdispatch/core/errors';
import { ENQUEUE_LIMITS, enqueueFields } from '@pgdispatch/core/enqueue-limits';
import { queueNameSchema } from '@pgdispatch/core/queue-name';
import { JOB_STATES } from '@pgdispatch/core/types';
import { jobIdParamSchema } from '@pgdispatch/core/internal-api';

/** Public API request schemas: they validate requests and generate /openapi.json. */
export const enqueueBody = z
  .strictObject({
    task: enqueueFields.task.describe('Task name the worker runs'),
    payload: z.unknown().optional().describe('Any JSON; validated by the task schema on the worker'),
    priority: enqueueFields.priority.optional().describe('Lower runs first (default 0)'),
    runAt: z.iso.datetime({ offset: true }).optional().describe('Absolute start time (ISO 8601)'),
    delayMs: enqueueFields.delayMs.max(ENQUEUE_LIMITS.publicDelayMsMax).optional().describe('Start delay in ms (default 0)'),
    maxAttempts: enqueueFields.maxAttempts.optional().describe('Default: the queue default (5)'),
    idempotencyKey: enqueueFields.idempotencyKey.optional().describe('Per queue: repeats return the first job (200)'),
    uniqueKey: enqueueFields.idempotencyKey.optional().describe('Per queue, unique while active: repeats return the queued/running job (200); free again once it finished'),
  })
  .refine((b) => !(b.runAt !== undefined && b.delayMs !== undefined), { message: 'give runAt or delayMs, not both' })
  .refine((b) => !(b.idempotencyKey !== undefined && b.uniqueKey !== undefined), { message: 'give idempotencyKey or uniqueKey, not both' });

export const enqueueBatchBody = z.strictObject({
  jobs: z.array(enqueueBody).min(1).max(1000).describe('At most 1000 jobs; one INSERT'),
});

export const enqueueBatchQuery = z.object({
  return: z.enum(['jobs', 'ids']).optional().describe('ids: answer each item with { id, created } instead of { job, created } (default jobs)'),
});

export const listJobsQuery = z.strictObject({
  queue: queueNameSchema.optional(),
  state: z.enum(JOB_STATES).optional(),
  task: z.string().min(1).max(128).optional(),
  parent: z.coerce.number().int().positive().optional().describe('Only children of this job'),
  createdAfter: z.iso.datetime({ offset: true }).optional().describe('Only jobs created at or after this time (ISO 8601)'),
  createdBefore: z.iso.datetime({ offset: true }).optional().describe('Only jobs created before this time (ISO 8601)'),
  deadLettered: z.enum(['true', 'false']).optional().describe('true: only dead-lettered jobs (deadLetterFrom set); false: only the others'),
  cursor: z.coerce.number().int().positive().optional().describe('nextCursor of the previous page'),
  limit: z.coerce.number().int().min(1).max(500).optional().describe('Page size (default 50)'),
});

export const throughputQuery = z
  .strictObject({
    windowSeconds: z.coerce.number().int().min(60).max(86_400).optional().describe('How far back (default 3600)'),
    bucketSeconds: z.coerce.number().int().min(10).max(3600).optional().describe('Bucket width (default 60)'),
  })
  .refine((q) => (q.windowSeconds ?? 3600) % (q.bucketSeconds ?? 60) === 0 && (q.windowSeconds ?? 3600) / (q.bucketSeconds ?? 60) <= 1440, {
    message: 'windowSeconds must be a multiple of bucketSeconds, with at most 1440 buckets',
  });

export const queuePolicyBody = z.strictObject({
  concurrencyLimit: z.number().int().min(1).max(1_000_000).nullable().optional().describe('Max running at once; null = unlimited'),
  defaultMaxAttempts: z.number().int().min(1).max(1000).optional(),
  backoffBaseMs: z.number().int().min(0).max(2_147_483_647).optional(),
  backoffMaxMs: z.number().int().min(0).max(2_147_483_647).optional(),
  retentionSeconds: z.number().int().min(0).max(2_147_483_647).nullable().optional(),
  deadLetterQueue: queueNameSchema.nullable().optional().describe('Jobs that end failed move there; null = they stay'),
  rateLimit: z.number().int().min(1).max(1_000_000).nullable().optional().describe('At most this many claims per rateIntervalMs (token bucket); null = no limit'),
  rateIntervalMs: z.number().int().min(1).max(86_400_000).optional().describe('The interval of rateLimit in ms (default 1000)'),
});

/** Filter of a bulk operation (POST /v1/jobs/bulk/:op). */
export const bulkBody = z.strictObject({
  queue: queueNameSchema.optional(),
  state: z.enum(JOB_STATES).optional(),
  task: z.string().min(1).max(128).optional(),
  createdBefore: z.iso.datetime({ offset: true }).optional(),
  createdAfter: z.iso.datetime({ offset: true }).optional(),
  limit: z.number().int().min(1).max(10_000).optional().describe('Most jobs this call touches (default 1000)'),
});

export const redriveBody = z.strictObject({
  limit: z.number().int().min(1).max(10_000).optional().describe('Most jobs this call sends back (default 1000)'),
});


/** Like parseJson, but an empty body counts as `{}` (for POSTs whose fields are all optional). */
export async function parseOptionalJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const text = await c.req.text();
  if (text.trim() === '') return parseWith(schema, {}, 'body');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw invalidRequest('request body must be valid JSON');
  }
  return parseWith(schema, raw, 'body');
}

/** Parses a JSON body against `schema`; malformed JSON and schema violations are 400 with issues. */
export async function parseJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw invalidRequest('request body must be valid JSON');
  }
  return parseWith(schema, raw, 'body');
}

export function parseWith<S extends z.ZodType>(schema: S, raw: unknown, where: string): z.output<S> {
  const r = schema.safeParse(raw);
  if (!r.success) {
    throw invalidRequest(`invalid ${where}`, r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message, code: i.code })));
  }
  return r.data;
}

export function parseQueueName(name: string): string {
  return parseWith(queueNameSchema, name, 'queue name');
}

/**
 * Where an event stream resumes: the `Last-Event-ID` header (sent by EventSource on reconnect) or
 * `?lastEventId=` (for clients that cannot set headers on a reconnect); digits only, else 400.
 */
export function parseLastEventId(c: Context): number {
  const raw = c.req.header('last-event-id') ?? c.req.query('lastEventId');
  if (raw === undefined || raw.trim() === '') return 0;
  if (!/^\d{1,15}$/.test(raw.trim())) throw invalidRequest('Last-Event-ID must be an event id (digits)', [{ path: 'lastEventId', message: 'digits only', code: 'invalid_format' }]);
  return Number(raw.trim());
}

/** Digits only (as on the internal API): `1e3`, `0x10` or ` 1` are a 400, not coerced. */
export function parseJobId(id: string): number {
  return parseWith(jobIdParamSchema, { id }, 'job id').id;
}
