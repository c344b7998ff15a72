import { Hono } from 'hono';
import type { Registry } from 'prom-client';
import type { Sql } from '@pgdispatch/engine/db';
import { migrationStatus } from '@pgdispatch/engine/migrator';
import { jobTasksWaiting } from '@pgdispatch/engine/queries/job-tasks';
import { queueDepths, queueList } from '@pgdispatch/engine/queries/queue-admin';
import { deadLetterDepths } from '@pgdispatch/engine/queries/job-bulk';
import type { Metrics } from '../metrics.js';

export interface HealthDeps {
  role: string;
  version: string;
  /** Queues this process executes (`*`, a list, or none). */
  listenQueues: '*' | string[];
  /** What /metrics exports. */
  registry: Registry;
  /** Absent in role worker: readiness is then the process's own. */
  sql?: Sql;
  /** Queue depth gauges, refreshed from `sql` on every scrape (with `sql`). */
  metrics?: Metrics;
  /** Which of these queues no executor asked work for lately (api/all roles). */
  unattendedQueues?: (queues: string[]) => string[];
  /** Which of these tasks no executor declared lately (api/all roles). */
  unattendedTasks?: (tasks: string[]) => string[];
  /** Extra readiness facts (a worker reports whether it reaches the api). */
  readiness?: () => Promise<{ ready: boolean; details: Record<string, unknown> }>;
  /**
   * How long a database outage may last before /readyz answers 503, in ms (DATABASE_OUTAGE_GRACE_MS;
   * default 0). Within it /readyz stays 200 with `database: "down"`, so a short blip does not
   * take every api pod out of the Service at once: they keep answering requests with 503 +
   * Retry-After, which clients retry, instead of connection errors from an empty Service.
   */
  databaseOutageGraceMs?: number;
}

/**
 * Longest the database check may take, in ms: below the chart's readiness timeout (3 s), so an
 * unanswered check (a black-holed network waits for the TCP connect timeout) reads as "down"
 * instead of a probe timeout that the grace cannot cover.
 */
const DATABASE_CHECK_TIMEOUT_MS = 2_000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the database within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** /healthz (process alive), /readyz (database reachable, migrations current), /metrics. */
export function healthRoutes(deps: HealthDeps) {
  const app = new Hono();
  // Liveness: the process answers. Never the database: an outage must not restart every pod.
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  const graceMs = deps.databaseOutageGraceMs ?? 0;
  /** When the first failed check of the current outage ran; undefined while the database answers. */
  let downSince: number | undefined;

  app.get('/readyz', async (c) => {
    const details: Record<string, unknown> = { role: deps.role, version: deps.version, listenQueues: deps.listenQueues };
    let ready = true;
    let degraded = false;
    if (deps.sql) {
      try {
        const status = await withTimeout(migrationStatus(deps.sql), DATABASE_CHECK_TIMEOUT_MS);
        downSince = undefined;
        details.database = 'ok';
        details.migrations = status;
        if (!status.current) ready = false;
        if (deps.unattendedQueues) {
          const names = (await queueList(deps.sql)).filter((q) => !q.paused).map((q) => q.name);
          const unattended = deps.unattendedQueues(names);
          // Not a readiness failure: the api serves fine, but these queues will not progress.
          details.queuesWithoutWorkers = unattended;
          if (unattended.length > 0) details.warning = `no worker has asked for work on: ${unattended.join(', ')}`;
        }
        if (deps.unattendedTasks) {
          // Jobs of these tasks wait (they are never failed for it) until a worker that knows them asks.
          const unknown = deps.unattendedTasks(await jobTasksWaiting(deps.sql));
          details.tasksWithoutWorkers = unknown;
          if (unknown.length > 0) {
            const warning = `no worker that knows these tasks has asked for work: ${unknown.join(', ')}`;
            details.warning = details.warning ? `${String(details.warning)}; ${warning}` : warning;
          }
        }
      } catch (err) {
        const now = Date.now();
        downSince ??= now;
        details.database = 'down';
        details.databaseDownForMs = now - downSince;
        details.error = err instanceof Error ? err.message : String(err);
        if (now - downSince >= graceMs) ready = false;
        else degraded = true;
      }
    }
    if (deps.readiness) {
      const r = await deps.readiness();
      Object.assign(details, r.details);
      if (!r.ready) ready = false;
    }
    if (!ready) c.header('Retry-After', '1');
    const status = !ready ? 'not_ready' : degraded ? 'degraded' : 'ready';
    return c.json({ status, ...details }, ready ? 200 : 503);
  });

  app.get('/metrics', async (c) => {
    const { sql, metrics } = deps;
    if (sql && metrics) {
      try {
        const rows = await queueDepths(sql);
        metrics.queueDepth.reset();
        metrics.oldestWaiting.reset();
        const oldest = new Map<string, number>();
        for (const r of rows) {
          metrics.queueDepth.set({ queue: r.queue, state: r.state }, r.n);
          if (r.state !== 'running') oldest.set(r.queue, Math.max(oldest.get(r.queue) ?? 0, r.oldestSeconds));
        }
        for (const [queue, seconds] of oldest) metrics.oldestWaiting.set({ queue }, seconds);
        if (deps.unattendedTasks) {
          const unknown = deps.unattendedTasks(await jobTasksWaiting(sql));
          metrics.tasksWithoutWorkers.reset();
          for (const task of unknown) metrics.tasksWithoutWorkers.set({ task }, 1);
        }
        metrics.deadLettered.reset();
        for (const r of await deadLetterDepths(sql)) metrics.deadLettered.set({ queue: r.queue }, r.n);
      } catch {
        // Depth gauges keep their last values while the database is away; counters still export.
      }
    }
    c.header('Content-Type', deps.registry.contentType);
    return c.body(await deps.registry.metrics());
  });
  return app;
}
