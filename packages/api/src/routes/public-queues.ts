import { Hono } from 'hono';
import type { Sql } from '@pgdispatch/engine/db';
import { queueGet, queueList, queuePause, queueResume, queueStats, queueUpsert, type QueuePolicyPatch } from '@pgdispatch/engine/queries/queue-admin';
import { queueRedrive } from '@pgdispatch/engine/queries/job-bulk';
import { jobEventsLatestId } from '@pgdispatch/engine/queries/job-events';
import { eventStream, type StreamDeps } from '../event-stream.js';
import { ALL_QUEUES } from '../job-events.js';
import type { Metrics } from '../metrics.js';
import type { AuthVariables } from '../middleware/auth/index.js';
import { requireScope } from '../middleware/auth/index.js';
import { parseJson, parseLastEventId, parseOptionalJson, parseQueueName, queuePolicyBody, redriveBody } from '../schemas.js';

/** /v1 queue routes: list, create/update policy, pause, resume, stats, redrive, event streams (one queue, all queues). */
export function publicQueueRoutes(deps: { sql: Sql; streams: StreamDeps; metrics: Metrics }) {
  const app = new Hono<{ Variables: AuthVariables }>();
  app.get('/queues', requireScope('read'), async (c) => c.json({ queues: await queueList(deps.sql) }));
  app.put('/queues/:name', requireScope('admin'), async (c) => {
    const name = parseQueueName(c.req.param('name'));
    const body = await parseJson(c, queuePolicyBody);
    const patch = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined)) as QueuePolicyPatch;
    return c.json({ queue: await queueUpsert(deps.sql, { name, ...patch }) });
  });
  app.post('/queues/:name/pause', requireScope('admin'), async (c) => c.json({ queue: await queuePause(deps.sql, { name: parseQueueName(c.req.param('name')) }) }));
  app.post('/queues/:name/resume', requireScope('admin'), async (c) => c.json({ queue: await queueResume(deps.sql, { name: parseQueueName(c.req.param('name')) }) }));
  app.get('/queues/:name/stats', requireScope('read'), async (c) => c.json({ stats: await queueStats(deps.sql, { name: parseQueueName(c.req.param('name')) }) }));
  /** Dead-lettered jobs of this queue back to the queues they failed in; `{ count }`, at most `limit` per call. */
  app.post('/queues/:name/redrive', requireScope('admin'), async (c) => {
    const name = parseQueueName(c.req.param('name'));
    const body = await parseOptionalJson(c, redriveBody);
    await queueGet(deps.sql, { name });
    const out = await queueRedrive(deps.sql, { name, ...(body.limit !== undefined && { limit: body.limit }) });
    deps.metrics.redriven.inc({ queue: name }, out.count);
    return c.json(out);
  });
  /** SSE of every event of the queue's jobs (replay after Last-Event-ID, then live); never ends by itself. */
  app.get('/queues/:name/events', requireScope('read'), async (c) => {
    const name = parseQueueName(c.req.param('name'));
    const afterId = parseLastEventId(c);
    await queueGet(deps.sql, { name });
    return eventStream(c, { ...deps.streams, filter: { queue: name }, afterId, endsOnFinal: false });
  });
  /**
   * SSE of every queue's job events (what a dashboard of all queues listens to: one connection,
   * not one per queue, which a browser's six connections per origin would soon run out of).
   * Without Last-Event-ID it starts at the newest stored event (no replay: that would be the
   * whole table); with one, it resumes after it.
   */
  app.get('/events', requireScope('read'), async (c) => {
    const given = parseLastEventId(c);
    const afterId = given > 0 ? given : await jobEventsLatestId(deps.sql);
    return eventStream(c, { ...deps.streams, filter: { queue: ALL_QUEUES }, afterId, endsOnFinal: false });
  });
  return app;
}
