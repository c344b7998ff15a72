import { Hono, type Context } from 'hono';
import type { z } from 'zod';
import { DispatchError, leaseLost } from '@pgdispatch/core/errors';
import type { ItemRefusal } from '@pgdispatch/core/transport';
import {
  INTERNAL_ROUTES,
  type InternalRoute,
  childEnqueueRequestSchema,
  completeManyRequestSchema,
  completeRequestSchema,
  dequeueRequestSchema,
  failManyRequestSchema,
  failRequestSchema,
  heartbeatRequestSchema,
  progressRequestSchema,
  releaseRequestSchema,
  stepSaveRequestSchema,
  stepsLoadRequestSchema,
} from '@pgdispatch/core/internal-api';
import type { ControlPlane } from '../control-plane.js';
import type { AuthVariables } from '../middleware/auth/index.js';
import { allowedQueues } from '../tokens.js';
import { parseJobId, parseJson } from '../schemas.js';

type Env = { Variables: AuthVariables };

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
  const app = new Hono<Env>();
  const { control } = deps;

  /** A route with a JSON body validated by `schema`. */
  const post = <S extends z.ZodType>(route: InternalRoute, schema: S, handle: (req: z.output<S>, c: Context<Env>) => Promise<Response>) =>
    app.post(INTERNAL_ROUTES[route], async (c) => handle(await parseJson(c, schema), c));
  /** A route of one job (`:id`, digits only) with a JSON body validated by `schema`. */
  const postJob = <S extends z.ZodType>(route: InternalRoute, schema: S, handle: (id: number, req: z.output<S>, c: Context<Env>) => Promise<Response>) =>
    app.post(INTERNAL_ROUTES[route], async (c) => handle(parseJobId(c.req.param('id') ?? ''), await parseJson(c, schema), c));

  post('dequeue', dequeueRequestSchema, async (req, c) => {
    const queues = allowedQueues(c.get('worker'), req.queues);
    // The request's signal aborts when the client hangs up: the control plane then releases
    // whatever was claimed for it instead of letting the leases run out.
    const jobs = await control.dequeue({ queues, tasks: req.tasks ?? '*', max: req.max, waitMs: Math.min(req.waitMs, deps.maxWaitMs), signal: c.req.raw.signal }, { tier: 'http', subject: c.get('worker').subject });
    return c.json({ jobs });
  });
  post('heartbeat', heartbeatRequestSchema, async (req, c) => c.json({ items: await control.heartbeat(req.items, c.get('worker').queues) }));
  post('release', releaseRequestSchema, async (req, c) => c.json({ items: await control.release(req.items, c.get('worker').queues) }));
  post('completeMany', completeManyRequestSchema, async (req, c) => c.json({ items: await control.completeMany(req.items, c.get('worker').queues) }));
  post('failMany', failManyRequestSchema, async (req, c) => c.json({ items: await control.failMany(req.items, c.get('worker').queues) }));

  postJob('complete', completeRequestSchema, async (id, req, c) => {
    const out = await control.complete({ id, leaseToken: req.leaseToken, result: req.result }, c.get('worker').queues);
    if (!out.ok) throw refusalError(out);
    return c.json(out);
  });
  postJob('fail', failRequestSchema, async (id, req, c) => {
    const out = await control.fail({ id, leaseToken: req.leaseToken, error: req.error, retryable: req.retryable }, c.get('worker').queues);
    if (!out.ok) throw refusalError(out);
    return c.json(out);
  });
  postJob('stepsLoad', stepsLoadRequestSchema, async (id, req, c) => c.json({ steps: await control.loadSteps({ id, leaseToken: req.leaseToken }, c.get('worker').queues) }));
  postJob('stepSave', stepSaveRequestSchema, async (id, req, c) => {
    await control.saveStep({ id, leaseToken: req.leaseToken, name: req.name, result: req.result ?? null }, c.get('worker').queues);
    return c.json({ ok: true });
  });
  postJob('progress', progressRequestSchema, async (id, req, c) => {
    await control.progress({ id, leaseToken: req.leaseToken, data: req.data ?? null }, c.get('worker').queues);
    return c.json({ ok: true });
  });
  postJob('children', childEnqueueRequestSchema, async (id, req, c) => {
    allowedQueues(c.get('worker'), [req.job.queue]); // a credential's queues bound its children too
    // …and the parent: its queue must be one the credential may touch (checked with its lease).
    const out = await control.enqueueChild({ id, leaseToken: req.leaseToken, key: req.key, job: req.job }, c.get('worker').queues);
    return c.json(out, out.created ? 201 : 200);
  });

  return app;
}
