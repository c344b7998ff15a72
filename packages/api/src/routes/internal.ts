import { Hono } from 'hono';
import { DispatchError, leaseLost } from '@pgdispatch/core/errors';
import type { ItemRefusal } from '@pgdispatch/core/transport';
import {
  INTERNAL_ROUTES,
  childEnqueueRequestSchema,
  completeManyRequestSchema,
  completeRequestSchema,
  dequeueRequestSchema,
  failManyRequestSchema,
  failRequestSchema,
  heartbeatRequestSchema,
  jobIdParamSchema,
  progressRequestSchema,
  releaseRequestSchema,
  stepSaveRequestSchema,
  stepsLoadRequestSchema,
} from '@pgdispatch/core/internal-api';
import type { ControlPlane } from '../control-plane.js';
import type { AuthVariables } from '../middleware/auth/index.js';
import { allowedQueues } from '../tokens.js';
import { parseJson, parseWith } from '../schemas.js';

/** The error a single-job route answers for a refused item (batch routes answer per item). */
function refusalError(r: ItemRefusal): DispatchError {
  if (r.code === 'lease_lost') return leaseLost(r.id);
  return new DispatchError(r.code, r.message ?? `job ${r.id}: ${r.code}`, { details: r.details ?? { id: r.id } });
}

/**
 * /internal/v1 for workers. Every lease-scoped write names its lease token; a stale one is a
 * 409 lease_lost and changes nothing. Every write is scoped to the credential's queues: a job in
 * another queue is 403 forbidden (per item in batches) and changes nothing. Dequeue is a
 * long-poll served by the batch-pull dispatcher.
 */
export function internalRoutes(deps: { control: ControlPlane; maxWaitMs: number }) {
  const app = new Hono<{ Variables: AuthVariables }>();
  const jobId = (raw: string | undefined) => parseWith(jobIdParamSchema, { id: raw }, 'job id').id;

  app.post(INTERNAL_ROUTES.dequeue, async (c) => {
    const req = await parseJson(c, dequeueRequestSchema);
    const queues = allowedQueues(c.get('worker'), req.queues);
    // The request's signal aborts when the client hangs up: the control plane then releases
    // whatever was claimed for it instead of letting the leases run out.
    const jobs = await deps.control.dequeue({ queues, tasks: req.tasks ?? '*', max: req.max, waitMs: Math.min(req.waitMs, deps.maxWaitMs), signal: c.req.raw.signal }, { tier: 'http', subject: c.get('worker').subject });
    return c.json({ jobs });
  });

  app.post(INTERNAL_ROUTES.heartbeat, async (c) => {
    const req = await parseJson(c, heartbeatRequestSchema);
    return c.json({ items: await deps.control.heartbeat(req.items, c.get('worker').queues) });
  });

  app.post(INTERNAL_ROUTES.release, async (c) => {
    const req = await parseJson(c, releaseRequestSchema);
    return c.json({ items: await deps.control.release(req.items, c.get('worker').queues) });
  });

  app.post(INTERNAL_ROUTES.complete, async (c) => {
    const id = jobId(c.req.param('id'));
    const req = await parseJson(c, completeRequestSchema);
    const out = await deps.control.complete({ id, leaseToken: req.leaseToken, result: req.result }, c.get('worker').queues);
    if (!out.ok) throw refusalError(out);
    return c.json(out);
  });

  app.post(INTERNAL_ROUTES.completeMany, async (c) => {
    const req = await parseJson(c, completeManyRequestSchema);
    return c.json({ items: await deps.control.completeMany(req.items, c.get('worker').queues) });
  });

  app.post(INTERNAL_ROUTES.failMany, async (c) => {
    const req = await parseJson(c, failManyRequestSchema);
    return c.json({ items: await deps.control.failMany(req.items, c.get('worker').queues) });
  });

  app.post(INTERNAL_ROUTES.fail, async (c) => {
    const id = jobId(c.req.param('id'));
    const req = await parseJson(c, failRequestSchema);
    const out = await deps.control.fail({ id, leaseToken: req.leaseToken, error: req.error, retryable: req.retryable }, c.get('worker').queues);
    if (!out.ok) throw refusalError(out);
    return c.json(out);
  });

  app.post(INTERNAL_ROUTES.stepsLoad, async (c) => {
    const id = jobId(c.req.param('id'));
    const req = await parseJson(c, stepsLoadRequestSchema);
    return c.json({ steps: await deps.control.loadSteps({ id, leaseToken: req.leaseToken }, c.get('worker').queues) });
  });

  app.post(INTERNAL_ROUTES.stepSave, async (c) => {
    const id = jobId(c.req.param('id'));
    const req = await parseJson(c, stepSaveRequestSchema);
    await deps.control.saveStep({ id, leaseToken: req.leaseToken, name: req.name, result: req.result ?? null }, c.get('worker').queues);
    return c.json({ ok: true });
  });

  app.post(INTERNAL_ROUTES.progress, async (c) => {
    const id = jobId(c.req.param('id'));
    const req = await parseJson(c, progressRequestSchema);
    await deps.control.progress({ id, leaseToken: req.leaseToken, data: req.data ?? null }, c.get('worker').queues);
    return c.json({ ok: true });
  });

  app.post(INTERNAL_ROUTES.children, async (c) => {
    const id = jobId(c.req.param('id'));
    const req = await parseJson(c, childEnqueueRequestSchema);
    allowedQueues(c.get('worker'), [req.job.queue]); // a credential's queues bound its children too
    // …and the parent: its queue must be one the credential may touch (checked with its lease).
    const out = await deps.control.enqueueChild({ id, leaseToken: req.leaseToken, key: req.key, job: req.job }, c.get('worker').queues);
    return c.json(out, out.created ? 201 : 200);
  });

  return app;
}
