import { Hono } from 'hono';
import { requestId } from 'hono/request-id';
import type { ApiKey, WorkerKey } from '@pgdispatch/core/config';
import type { Sql } from '@pgdispatch/engine/db';
import type { Logger } from '@pgdispatch/core/log';
import type { ControlPlane } from './control-plane.js';
import type { Enqueuer } from './enqueue.js';
import type { StreamDeps } from './event-stream.js';
import { errorHandler, notFoundHandler } from './errors.js';
import type { JobEvents } from './job-events.js';
import type { Metrics } from './metrics.js';
import { apiKeyAuth, workerAuth, type AuthVariables } from './middleware/auth/index.js';
import { bodyLimit } from './middleware/body-limit/index.js';
import { openApiDocument } from './openapi.js';
import { healthRoutes, type HealthDeps } from './routes/health.js';
import { internalRoutes } from './routes/internal.js';
import { publicBulkRoutes } from './routes/public-bulk.js';
import { publicJobRoutes } from './routes/public-jobs.js';
import { publicQueueRoutes } from './routes/public-queues.js';
import { publicStatsRoutes, whoamiRoute } from './routes/public-stats.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { publicScheduleRoutes } from './routes/public-schedules.js';
import type { WorkerPresence } from './worker-presence.js';

export interface AppDeps {
  sql: Sql;
  /** The Transport the internal routes serve. */
  control: ControlPlane;
  /** The public enqueue path. */
  enqueuer: Enqueuer;
  /** Which queues executors asked for work on lately (`/readyz`). */
  presence: WorkerPresence;
  events: JobEvents;
  metrics: Metrics;
  log: Logger;
  version: string;
  role: string;
  listenQueues: '*' | string[];
  apiKeys: readonly ApiKey[];
  workerKeys: readonly WorkerKey[];
  workerTokenSecret?: string;
  bodyLimitBytes: number;
  /** Clamp for dequeue long-polls, in ms. */
  dequeueMaxWaitMs: number;
  /** Built dashboard (index.html + assets) served at `/`; absent: no dashboard. */
  dashboardDir?: string;
  /** Interval of SSE keep-alive comments, in ms (default 15000). */
  sseKeepAliveMs?: number;
  /** /readyz stays 200 through a database outage this long, in ms (see HealthDeps). */
  databaseOutageGraceMs?: number;
  /** Largest schedule payload, in bytes (MAX_PAYLOAD_BYTES; default 262144). */
  maxPayloadBytes?: number;
}

/** The api tier's HTTP app, built from explicit dependencies (no globals), so tests run it for real. */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  app.onError(errorHandler(deps.log));
  app.notFound(notFoundHandler);
  app.use(requestId());

  const health: HealthDeps = {
    role: deps.role,
    version: deps.version,
    listenQueues: deps.listenQueues,
    registry: deps.metrics.registry,
    metrics: deps.metrics,
    sql: deps.sql,
    unattendedQueues: (q) => deps.presence.unattendedQueues(q),
    unattendedTasks: (t) => deps.presence.unattendedTasks(t),
    ...(deps.databaseOutageGraceMs !== undefined && { databaseOutageGraceMs: deps.databaseOutageGraceMs }),
  };
  app.route('/', healthRoutes(health));
  app.get('/openapi.json', (c) => c.json(openApiDocument(deps.version)));

  app.route('/', whoamiRoute({ keys: deps.apiKeys })); // before /v1's key check: it answers without a key too
  const v1 = new Hono<{ Variables: AuthVariables }>();
  v1.use(bodyLimit({ maxBytes: deps.bodyLimitBytes }), apiKeyAuth({ keys: deps.apiKeys }));
  const streams: StreamDeps = {
    hub: deps.events,
    sql: deps.sql,
    keepAliveMs: deps.sseKeepAliveMs ?? 15_000,
    onSent: (e) => deps.metrics.eventsStreamed.inc({ type: e.type }),
    onOpen: () => deps.metrics.eventStreams.inc(),
    onClose: () => deps.metrics.eventStreams.dec(),
  };
  v1.route('/', publicBulkRoutes({ sql: deps.sql, metrics: deps.metrics })); // before /jobs/:id/…
  v1.route('/', publicJobRoutes({ sql: deps.sql, enqueuer: deps.enqueuer, streams }));
  v1.route('/', publicQueueRoutes({ sql: deps.sql, streams, metrics: deps.metrics }));
  v1.route('/', publicStatsRoutes({ sql: deps.sql, presence: deps.presence }));
  v1.route('/', publicScheduleRoutes({ sql: deps.sql, maxPayloadBytes: deps.maxPayloadBytes ?? 262_144 }));
  app.route('/v1', v1);

  const internal = new Hono<{ Variables: AuthVariables }>();
  internal.use('/internal/*', bodyLimit({ maxBytes: deps.bodyLimitBytes }), workerAuth({ keys: deps.workerKeys, ...(deps.workerTokenSecret ? { secret: deps.workerTokenSecret } : {}) }));
  internal.route('/', internalRoutes({ control: deps.control, maxWaitMs: deps.dequeueMaxWaitMs }));
  app.route('/', internal);
  if (deps.dashboardDir) app.route('/', dashboardRoutes({ dir: deps.dashboardDir, log: deps.log }));
  return app;
}
