import { Hono } from 'hono';
import { queueNameSchema } from '@pgdispatch/core/queue-name';
import type { Sql } from '@pgdispatch/engine/db';
import { scheduleCreate } from '@pgdispatch/engine/queries/schedule-create';
import { scheduleDelete } from '@pgdispatch/engine/queries/schedule-delete';
import { scheduleGet } from '@pgdispatch/engine/queries/schedule-get';
import { scheduleList } from '@pgdispatch/engine/queries/schedule-list';
import { scheduleUpdate, type SchedulePatch } from '@pgdispatch/engine/queries/schedule-update';
import type { AuthVariables } from '../middleware/auth/index.js';
import { requireScope } from '../middleware/auth/index.js';
import { listSchedulesQuery, scheduleCreateBody, schedulePatchBody } from '../schedule-schemas.js';
import { parseJson, parseWith } from '../schemas.js';

const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/** /v1 schedule routes: list and get (read); create, update, pause, resume, delete (admin). */
export function publicScheduleRoutes(deps: { sql: Sql; maxPayloadBytes: number }) {
  const app = new Hono<{ Variables: AuthVariables }>();
  const name = (raw: string) => parseWith(queueNameSchema, raw, 'schedule name');
  const { maxPayloadBytes } = deps;

  app.get('/schedules', requireScope('read'), async (c) => {
    const q = parseWith(listSchedulesQuery, c.req.query(), 'query');
    return c.json({ schedules: await scheduleList(deps.sql, defined(q)) });
  });
  app.post('/schedules', requireScope('admin'), async (c) => {
    const body = await parseJson(c, scheduleCreateBody);
    return c.json({ schedule: await scheduleCreate(deps.sql, { ...defined(body), maxPayloadBytes }) }, 201);
  });
  app.get('/schedules/:name', requireScope('read'), async (c) => c.json({ schedule: await scheduleGet(deps.sql, { name: name(c.req.param('name')) }) }));
  app.patch('/schedules/:name', requireScope('admin'), async (c) => {
    const n = name(c.req.param('name'));
    const patch = defined(await parseJson(c, schedulePatchBody)) as SchedulePatch;
    return c.json({ schedule: await scheduleUpdate(deps.sql, { name: n, patch, maxPayloadBytes }) });
  });
  app.post('/schedules/:name/pause', requireScope('admin'), async (c) =>
    c.json({ schedule: await scheduleUpdate(deps.sql, { name: name(c.req.param('name')), patch: { enabled: false } }) }));
  app.post('/schedules/:name/resume', requireScope('admin'), async (c) =>
    c.json({ schedule: await scheduleUpdate(deps.sql, { name: name(c.req.param('name')), patch: { enabled: true } }) }));
  app.delete('/schedules/:name', requireScope('admin'), async (c) => c.json({ schedule: await scheduleDelete(deps.sql, { name: name(c.req.param('name')) }) }));
  return app;
}
