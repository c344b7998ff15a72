import type { Duplex } from 'node:stream';
import { serve as serveHttp, type ServerType } from '@hono/node-server';
import { dashboardDir } from '@pgdispatch/dashboard/dir';
import { Hono } from 'hono';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Config } from '@pgdispatch/core/config';
import { resolveRole, type RolePlan } from '@pgdispatch/core/roles';
import { createApp } from '@pgdispatch/api/app';
import { ControlPlane } from '@pgdispatch/api/control-plane';
import { Enqueuer } from '@pgdispatch/api/enqueue';
import { Dispatcher } from '@pgdispatch/api/dispatcher';
import { JobEvents } from '@pgdispatch/api/job-events';
import { Metrics } from '@pgdispatch/api/metrics';
import { Scheduler } from '@pgdispatch/api/scheduler';
import { healthRoutes } from '@pgdispatch/api/routes/health';
import { WorkerPresence } from '@pgdispatch/api/worker-presence';
import { errorHandler, notFoundHandler } from '@pgdispatch/api/errors';
import { queueUpsert } from '@pgdispatch/engine/queries/queue-admin';
import { createJsonLogger, type Logger } from '@pgdispatch/core/log';
import { openDatabase, type Database } from './database.js';
import { startMaintenance } from './maintenance.js';
import { loadExecutorTasks, startExecutor, type Executor } from './executor.js';
import { workerMetrics } from './worker-metrics.js';
import { serverVersion } from './version.js';

export interface RunningServer {
  plan: RolePlan;
  /** Base URL of the HTTP listener. */
  url: string;
  port: number;
  /** Graceful stop: stop taking work, finish or release in-flight jobs, close the database last. */
  stop(): Promise<void>;
}

/**
 * Requests Node's HTTP parser refuses before any handler runs (a URL or headers over its 16 KiB
 * limit, malformed HTTP) got a bare `431`/`400` with no body. They get the same
 * `{ error: { code, message } }` body as every other error instead (found by the fuzz suite).
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
  const [status, reason, code, message] = tooLarge
    ? [431, 'Request Header Fields Too Large', 'payload_too_large', 'request URL and headers exceed 16384 bytes']
    : [400, 'Bad Request', 'invalid_request', 'malformed HTTP request'];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

function listen(app: Hono, host: string, port: number): Promise<{ server: ServerType; port: number }> {
  return new Promise((resolve, reject) => {
    const server = serveHttp({ fetch: app.fetch, hostname: host, port }, (info) => resolve({ server, port: info.port }));
    server.once('error', reject);
    server.on('clientError', answerClientError);
  });
}

function closeHttp(server: ServerType, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.(), graceMs);
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
  });
}

/** `pgdispatch serve`: config → role → start what the role needs. */
export async function startServer(config: Readonly<Config>, opts: { log?: Logger; demoQueue?: boolean } = {}): Promise<RunningServer> {
  const plan = resolveRole(config);
  const log = opts.log ?? createJsonLogger({ level: config.LOG_LEVEL, base: { role: plan.role } });
  const version = serverVersion();
  // One registry per process: the control plane's metrics (roles all/api), the executor's
  // (roles all/worker) and Node's defaults.
  const metrics = plan.needsDatabase ? new Metrics() : undefined;
  const registry = metrics?.registry ?? new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'pgdispatch_' });
  // Shutdown order, by phase: executor (finish or release in-flight jobs while the database is
  // up) → dispatcher (answer waiting long-polls) → HTTP → maintenance/events → database last.
  const phases: Record<'executor' | 'dispatch' | 'http' | 'background' | 'database', (() => Promise<void>)[]> = {
    executor: [], dispatch: [], http: [], background: [], database: [],
  };
  const runStops = async (onError: (err: unknown) => void) => {
    for (const phase of ['executor', 'dispatch', 'http', 'background', 'database'] as const) {
      for (const stop of phases[phase]) await stop().catch(onError);
    }
  };
  // Tasks first: a module that fails to load or validate stops the process before an embedded
  // PostgreSQL starts, a connection opens or a migration runs.
  const tasks = plan.executes ? await loadExecutorTasks(config) : undefined;
  let db: Database | undefined;
  let executor: Executor | undefined;
  let app: Hono;

  try {
    if (metrics) {
      db = await openDatabase(config, log);
      const database = db;
      phases.database.push(() => database.close());
      if (opts.demoQueue) await queueUpsert(db.sql, { name: 'demo' });
      const dispatcher = new Dispatcher({
        sql: db.sql,
        ...(db.genericSql && { claimSql: db.genericSql }),
        listenSql: db.listenSql,
        leaseMs: config.LEASE_MS,
        batchMax: config.CLAIM_BATCH_MAX,
        pollIntervalMs: config.POLL_INTERVAL_MS,
        log,
        onClaimRound: (n) => metrics.claimBatch.observe(n),
        onRelease: (n) => metrics.released.inc(n),
        onRateLimited: (queue) => metrics.rateLimited.inc({ queue }),
      });
      await dispatcher.start();
      phases.dispatch.push(() => dispatcher.stop());
      const maintenance = startMaintenance({ sql: db.sql, config, log });
      phases.background.push(() => maintenance.stop());
      // Every api/all process runs the scheduler; the row lock per schedule makes that safe.
      const scheduler = new Scheduler({ sql: db.sql, intervalMs: config.SCHEDULER_INTERVAL_MS, graceMs: config.SCHEDULER_GRACE_MS, maxPayloadBytes: config.MAX_PAYLOAD_BYTES, log, metrics });
      scheduler.start();
      phases.background.push(() => scheduler.stop());
      const events = new JobEvents({ sql: db.sql, listenSql: db.listenSql, log, onFetch: () => metrics.eventFetches.inc() });
      // It LISTENs only while a stream is open (job-events.ts); the dispatcher's LISTEN on the
      // same connection has already shown at start that LISTEN works.
      phases.background.push(() => events.stop());
      // Enqueues and completions committed here wake this process's dispatcher at once (the NOTIFY
      // they also send is for the other api pods).
      const enqueuer = new Enqueuer({ sql: db.sql, metrics, maxPayloadBytes: config.MAX_PAYLOAD_BYTES, onRunnable: (queues) => dispatcher.wakeQueues(queues) });
      const presence = new WorkerPresence();
      const control = new ControlPlane({ sql: db.sql, ...(db.genericSql && { leaseSql: db.genericSql }), dispatcher, enqueuer, presence, metrics, leaseMs: config.LEASE_MS, maxPayloadBytes: config.MAX_PAYLOAD_BYTES });
      app = createApp({
        sql: db.sql,
        control,
        enqueuer,
        presence,
        events,
        metrics,
        log,
        version,
        role: plan.role,
        listenQueues: plan.queues,
        apiKeys: config.API_KEYS,
        workerKeys: config.WORKER_KEYS,
        ...(config.WORKER_TOKEN_SECRET ? { workerTokenSecret: config.WORKER_TOKEN_SECRET } : {}),
        bodyLimitBytes: config.BODY_LIMIT_BYTES,
        dequeueMaxWaitMs: config.DEQUEUE_MAX_WAIT_MS,
        dashboardDir,
        sseKeepAliveMs: config.SSE_KEEPALIVE_MS,
        databaseOutageGraceMs: config.DATABASE_OUTAGE_GRACE_MS,
        maxPayloadBytes: config.MAX_PAYLOAD_BYTES,
      });
      if (plan.executes) executor = await startExecutor({ config, plan, log, metrics: workerMetrics(registry), transport: control, ...(tasks ? { tasks } : {}) });
    } else {
      // Role worker: health and metrics only; readiness = the runtime is running.
      executor = await startExecutor({ config, plan, log, metrics: workerMetrics(registry), ...(tasks ? { tasks } : {}) });
      const running = executor;
      app = new Hono();
      app.onError(errorHandler(log));
      app.notFound(notFoundHandler);
      app.route('/', healthRoutes({ role: plan.role, version, listenQueues: plan.queues, registry, readiness: () => running.readiness() }));
    }
    if (executor) {
      const ex = executor;
      phases.executor.push(() => ex.stop());
    }
    const { server, port } = await listen(app, config.HOST, config.PORT);
    phases.http.push(() => closeHttp(server, 2_000));
    const shownHost = config.HOST === '0.0.0.0' || config.HOST === '::' ? 'localhost' : config.HOST;
    const url = `http://${shownHost}:${port}`;
    log.info('pgdispatch serving', { url, role: plan.role, queues: plan.queues, embeddedDatabase: plan.embeddedDatabase, version });
    let stopping: Promise<void> | undefined;
    return {
      plan,
      url,
      port,
      stop: () =>
        (stopping ??= (async () => {
          await runStops((err) => log.error('shutdown step failed', { error: String(err) }));
          log.info('pgdispatch stopped');
        })()),
    };
  } catch (err) {
    await runStops(() => {});
    throw err;
  }
}
