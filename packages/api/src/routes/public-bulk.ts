import { Hono } from 'hono';
import type { Sql } from '@pgdispatch/engine/db';
import { jobBulk, type BulkOperation } from '@pgdispatch/engine/queries/job-bulk';
import type { AuthVariables } from '../middleware/auth/index.js';
import { requireScope } from '../middleware/auth/index.js';
import type { Metrics } from '../metrics.js';
import { bulkBody, parseJson } from '../schemas.js';

/**
 * POST /v1/jobs/bulk/{retry,cancel,delete}: one statement per call over the jobs matching a
 * filter, at most `limit`; answers `{ count }`. Mounted before the `/jobs/:id/…` routes, whose
 * `:id` would otherwise take "bulk".
 */
export function publicBulkRoutes(deps: { sql: Sql; metrics: Metrics }) {
  const app = new Hono<{ Variables: AuthVariables }>();
  for (const op of ['retry', 'cancel', 'delete'] as const satisfies readonly BulkOperation[]) {
    app.post(`/jobs/bulk/${op}`, requireScope('admin'), async (c) => {
      const b = await parseJson(c, bulkBody);
      const out = await jobBulk(deps.sql, {
        op,
        ...(b.queue !== undefined && { queue: b.queue }),
        ...(b.state !== undefined && { state: b.state }),
        ...(b.task !== undefined && { task: b.task }),
        ...(b.createdBefore !== undefined && { createdBefore: new Date(b.createdBefore) }),
        ...(b.createdAfter !== undefined && { createdAfter: new Date(b.createdAfter) }),
        ...(b.limit !== undefined && { limit: b.limit }),
      });
      deps.metrics.bulkJobs.inc({ op }, out.count);
      return c.json(out);
    });
  }
  return app;
}
