import { Hono } from 'hono';
import type { Sql } from '@pgdispatch/engine/db';
import { queueGet, queueList, queuePause, queueResume, queueStats, queueUpsert, type QueuePolicyPatch } from '@pgdispatch/engine/queries/queue-admin';
import { eventStream, type StreamDeps } from '../event-stream.js';
import type { AuthVariables } from '../middleware/auth/index.js';
import { requireScope } from '../middleware/auth/index.js';
import { parseJson, parseLastEventId, parseQueueName, queuePolicyBody } from '../schemas.js';

/** /v1 queue routes: list, create/update policy, pause, resume, stats, event stream. */
export function publicQueueRoutes(deps: { sql: Sql; streams: StreamDeps }) {
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
  /** SSE of every event of the queue's jobs (replay after Last-Event-ID, then live); never ends by itself. */
  app.get('/queues/:name/events', requireScope('read'), async (c) => {
    const name = parseQueueName(c.req.param('name'));
    const afterId = parseLastEventId(c);
    await queueGet(deps.sql, { name });
    return eventStream(c, { ...deps.streams, filter: { queue: name }, afterId, endsOnFinal: false });
  });
  return app;
}
