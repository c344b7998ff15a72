import { Hono } from 'hono';
import type { Sql } from '@pgdispatch/engine/db';
import { jobCancel, jobGet, jobGetWithProgress, jobList, jobRetry } from '@pgdispatch/engine/queries/job-admin';
import type { EnqueueItem } from '@pgdispatch/engine/queries/job-enqueue';
import { jobStepsList } from '@pgdispatch/engine/queries/job-steps';
import { FINAL_STATES } from '@pgdispatch/core/types';
import type { z } from 'zod';
import type { AuthVariables } from '../middleware/auth/index.js';
import { requireScope } from '../middleware/auth/index.js';
import type { Enqueuer } from '../enqueue.js';
import { eventStream, type StreamDeps } from '../event-stream.js';
import { enqueueBatchBody, enqueueBatchQuery, enqueueBody, listJobsQuery, parseJobId, parseJson, parseLastEventId, parseQueueName, parseWith } from '../schemas.js';

function toItem(queue: string, b: z.output<typeof enqueueBody>): EnqueueItem {
  return {
    queue,
    task: b.task,
    payload: b.payload,
    ...(b.priority !== undefined && { priority: b.priority }),
    ...(b.runAt !== undefined && { runAt: new Date(b.runAt) }),
    ...(b.delayMs !== undefined && { delayMs: b.delayMs }),
    ...(b.maxAttempts !== undefined && { maxAttempts: b.maxAttempts }),
    ...(b.idempotencyKey !== undefined && { idempotencyKey: b.idempotencyKey }),
    ...(b.uniqueKey !== undefined && { uniqueKey: b.uniqueKey }),
  };
}

/** /v1 job routes: enqueue (one, batch), get, list, cancel, retry, event stream. */
export function publicJobRoutes(deps: { sql: Sql; enqueuer: Enqueuer; streams: StreamDeps }) {
  const app = new Hono<{ Variables: AuthVariables }>();

  app.post('/queues/:queue/jobs', requireScope('enqueue'), async (c) => {
    const queue = parseQueueName(c.req.param('queue'));
    const body = await parseJson(c, enqueueBody);
    const res = await deps.enqueuer.enqueueOne(toItem(queue, body));
    return c.json({ job: res.job, created: res.created }, res.created ? 201 : 200);
  });

  app.post('/queues/:queue/jobs/batch', requireScope('enqueue'), async (c) => {
    const queue = parseQueueName(c.req.param('queue'));
    const { return: shape } = parseWith(enqueueBatchQuery, c.req.query(), 'query');
    const body = await parseJson(c, enqueueBatchBody);
    const items = body.jobs.map((j) => toItem(queue, j));
    // ?return=ids: a bulk loader that needs only the ids is spared 1,000 job rows read back from
    // PostgreSQL and written out as JSON.
    const results = shape === 'ids' ? await deps.enqueuer.enqueueIds(items) : await deps.enqueuer.enqueue(items);
    return c.json({ results }, results.some((r) => r.created) ? 201 : 200);
  });

  app.get('/jobs', requireScope('read'), async (c) => {
    const q = parseWith(listJobsQuery, c.req.query(), 'query');
    const page = await jobList(deps.sql, {
      ...(q.queue !== undefined && { queue: q.queue }),
      ...(q.state !== undefined && { state: q.state }),
      ...(q.task !== undefined && { task: q.task }),
      ...(q.parent !== undefined && { parentId: q.parent }),
      ...(q.createdAfter !== undefined && { createdAfter: new Date(q.createdAfter) }),
      ...(q.createdBefore !== undefined && { createdBefore: new Date(q.createdBefore) }),
      ...(q.deadLettered !== undefined && { deadLettered: q.deadLettered === 'true' }),
      ...(q.cursor !== undefined && { beforeId: q.cursor }),
      ...(q.limit !== undefined && { limit: q.limit }),
    });
    return c.json(page);
  });

  app.get('/jobs/:id', requireScope('read'), async (c) => c.json({ job: await jobGetWithProgress(deps.sql, { id: parseJobId(c.req.param('id')) }) }));
  app.get('/jobs/:id/steps', requireScope('read'), async (c) => {
    const id = parseJobId(c.req.param('id'));
    await jobGet(deps.sql, { id }); // 404 for an unknown job rather than an empty list
    return c.json({ steps: await jobStepsList(deps.sql, { id }) });
  });
  app.post('/jobs/:id/cancel', requireScope('admin'), async (c) => c.json({ job: await jobCancel(deps.sql, { id: parseJobId(c.req.param('id')) }) }));
  app.post('/jobs/:id/retry', requireScope('admin'), async (c) => c.json({ job: await jobRetry(deps.sql, { id: parseJobId(c.req.param('id')) }) }));

  /** SSE of the job's durable events (replay after Last-Event-ID, then live); ends after a final state. */
  app.get('/jobs/:id/events', requireScope('read'), async (c) => {
    const id = parseJobId(c.req.param('id'));
    const afterId = parseLastEventId(c);
    const job = await jobGet(deps.sql, { id });
    return eventStream(c, {
      ...deps.streams,
      filter: { queue: job.queue, jobId: id },
      afterId,
      endsOnFinal: true,
      alreadyFinal: FINAL_STATES.includes(job.state),
    });
  });

  return app;
}
