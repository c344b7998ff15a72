import { Hono } from 'hono';
import type { Sql } from '@pgdispatch/engine/db';
import { jobTasksWaiting } from '@pgdispatch/engine/queries/job-tasks';
import { jobThroughput, queueOverview, type QueueOverview, type Throughput } from '@pgdispatch/engine/queries/queue-overview';
import type { AuthVariables } from '../middleware/auth/index.js';
import { requestScopes, requireScope } from '../middleware/auth/index.js';
import type { ApiKey } from '@pgdispatch/core/config';
import { parseWith, throughputQuery } from '../schemas.js';
import type { WorkerPresence } from '../worker-presence.js';

/**
 * Remembers an answer for `ttlMs` so that many open dashboards (each polling) cost one query
 * per interval, not one per viewer. Concurrent callers share the pending promise.
 */
function cached<K, T>(ttlMs: number, load: (key: K) => Promise<T>): (key: K, keyText: string) => Promise<T> {
  const entries = new Map<string, { at: number; value: Promise<T> }>();
  return (key, keyText) => {
    const hit = entries.get(keyText);
    if (hit && Date.now() - hit.at < ttlMs) return hit.value;
    const value = load(key);
    entries.set(keyText, { at: Date.now(), value });
    value.catch(() => entries.delete(keyText)); // a failure is not remembered
    if (entries.size > 32) for (const k of [...entries.keys()].slice(0, entries.size - 32)) entries.delete(k);
    return value;
  };
}

/** How long answers are reused, in ms: on 1M jobs the overview took ~250 ms and the hour of throughput ~100 ms (packages/engine/scripts/measure-overview.mjs), so every open dashboard together cost at most one of each per interval per api process. */
const OVERVIEW_TTL_MS = 2_000;
const THROUGHPUT_TTL_MS = 5_000;

/**
 * `GET /v1/whoami`, answered before the key check: without a key it says `authenticated: false`
 * (so a client learns that a key is needed without provoking a 401), with a valid key its scopes,
 * with an invalid one 401. It reveals nothing a 401 would not.
 */
export function whoamiRoute(deps: { keys: readonly ApiKey[] }) {
  const app = new Hono();
  app.get('/v1/whoami', (c) => {
    const scopes = requestScopes(deps.keys, { authorization: c.req.header('authorization'), apiKey: c.req.header('x-api-key') });
    return c.json({ authenticated: scopes !== undefined, open: deps.keys.length === 0, scopes: [...(scopes ?? [])].sort() });
  });
  return app;
}

/** /v1 read-only views for dashboards and scripts: queue overview, throughput, workers. */
export function publicStatsRoutes(deps: { sql: Sql; presence: WorkerPresence }) {
  const app = new Hono<{ Variables: AuthVariables }>();
  const overview = cached<void, { queues: QueueOverview[]; waitingTasks: string[] }>(OVERVIEW_TTL_MS, async () => {
    const [queues, waitingTasks] = await Promise.all([queueOverview(deps.sql), jobTasksWaiting(deps.sql)]);
    return { queues, waitingTasks };
  });
  const throughput = cached<{ windowSeconds: number; bucketSeconds: number }, Throughput>(THROUGHPUT_TTL_MS, (p) => jobThroughput(deps.sql, p));

  app.get('/stats/queues', requireScope('read'), async (c) => {
    const { queues, waitingTasks } = await overview(undefined, '');
    const unattended = new Set(deps.presence.unattendedQueues(queues.map((q) => q.name)));
    return c.json({
      queues: queues.map((q) => ({ ...q, workersListening: !unattended.has(q.name) })),
      // Tasks with waiting jobs that no executor declared lately (same view as /readyz).
      tasksWithoutWorkers: deps.presence.unattendedTasks(waitingTasks),
    });
  });

  app.get('/stats/throughput', requireScope('read'), async (c) => {
    const q = parseWith(throughputQuery, c.req.query(), 'query');
    const p = { windowSeconds: q.windowSeconds ?? 3600, bucketSeconds: q.bucketSeconds ?? 60 };
    return c.json(await throughput(p, `${p.windowSeconds}/${p.bucketSeconds}`));
  });

  app.get('/workers', requireScope('read'), (c) =>
    c.json({
      presenceSeconds: deps.presence.windowMs / 1000,
      workers: deps.presence.workers().map((w) => ({ ...w, lastSeenAt: new Date(w.lastSeenAt).toISOString() })),
    }));
  return app;
}
