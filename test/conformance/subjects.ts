// The implementations the conformance cases run against. Each factory builds a fresh subject;
// a new Transport implementation is done when it has an entry here and passes every case.
import { serve, type ServerType } from '@hono/node-server';
import { createApp } from '@pgdispatch/api/app';
import { ControlPlane } from '@pgdispatch/api/control-plane';
import { Dispatcher } from '@pgdispatch/api/dispatcher';
import { Enqueuer } from '@pgdispatch/api/enqueue';
import { JobEvents } from '@pgdispatch/api/job-events';
import { Metrics } from '@pgdispatch/api/metrics';
import { WorkerPresence } from '@pgdispatch/api/worker-presence';
import { mintWorkerToken } from '@pgdispatch/api/tokens';
import { silentLogger } from '@pgdispatch/core/log';
import type { Transport } from '@pgdispatch/core/transport';
import { closeDb, createDb } from '@pgdispatch/engine/db';
import { jobCancel, jobGet } from '@pgdispatch/engine/queries/job-admin';
import { jobEnqueue } from '@pgdispatch/engine/queries/job-enqueue';
import { jobReapExpiredLeases } from '@pgdispatch/engine/queries/job-maintenance';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { expireLease } from '@pgdispatch/engine/testing/factories';
import { HttpTransport } from '@pgdispatch/worker/http-transport';
import { FakeTransport } from '@pgdispatch/worker/testing/fake-transport';
import type { JobView, Subject, SubjectFactory } from './subject.js';

const LEASE_MS = 30_000;
const WORKER_KEY = 'conformance-worker-key-0123456789';
const TOKEN_SECRET = 'conformance-token-secret-0123456789abcdef';

/** The real control plane (dispatcher, batcher, engine) on a fresh database; `wrap` picks how it is reached. */
async function postgresSubject(
  wrap: (api: ApiSide, db: TestDatabase) => Promise<{ transport: Transport; scoped(queues: string[]): Promise<Transport>; close(): Promise<void> }>,
): Promise<Subject> {
  const db = await createTestDatabase();
  // As apps/server wires it: gated claims and the fenced lease writes on a generic-plan pool, so
  // every fencing case attacks the plans production runs.
  const generic = createDb({ url: db.url, max: 4, genericPlans: true });
  const dispatcher = new Dispatcher({ sql: db.sql, claimSql: generic, leaseMs: LEASE_MS, batchMax: 100, pollIntervalMs: 100, log: silentLogger });
  await dispatcher.start();
  const metrics = new Metrics();
  const enqueuer = new Enqueuer({ sql: db.sql, metrics, maxPayloadBytes: 262_144 });
  const presence = new WorkerPresence();
  const control = new ControlPlane({ sql: db.sql, leaseSql: generic, dispatcher, enqueuer, presence, metrics, leaseMs: LEASE_MS, maxPayloadBytes: 262_144 });
  const reached = await wrap({ control, enqueuer, presence, metrics }, db);
  return {
    transport: reached.transport,
    scoped: (queues) => reached.scoped(queues),
    enqueue: async (job) => (await jobEnqueue(db.sql, { task: 'conformance.task', ...job })).job.id,
    job: async (id): Promise<JobView> => {
      const j = await jobGet(db.sql, { id });
      return { id: j.id, queue: j.queue, task: j.task, payload: j.payload, state: j.state, attempt: j.attempt, leaseExpiresAt: j.leaseExpiresAt, cancelRequested: j.cancelRequested, result: j.result, lastError: j.lastError, parentId: j.parentId };
    },
    cancel: async (id) => void (await jobCancel(db.sql, { id })),
    expireLease: async (id) => {
      await expireLease(db.sql, id);
      await jobReapExpiredLeases(db.sql);
    },
    close: async () => {
      await reached.close();
      await dispatcher.stop();
      await closeDb(generic);
      await db.drop();
    },
  };
}

/** The api-side objects a subject is built from (what apps/server wires in roles all and api). */
interface ApiSide {
  control: ControlPlane;
  enqueuer: Enqueuer;
  presence: WorkerPresence;
  metrics: Metrics;
}

function listen(fetch: (req: Request) => Response | Promise<Response>): Promise<{ server: ServerType; url: string }> {
  return new Promise((resolve) => {
    const server = serve({ fetch, hostname: '127.0.0.1', port: 0 }, (info) => resolve({ server, url: `http://127.0.0.1:${info.port}` }));
  });
}

export const subjects: SubjectFactory[] = [
  {
    name: 'in-process control plane (role all)',
    postgres: true,
    start: () => postgresSubject(async ({ control }) => ({ transport: control, scoped: async (queues) => control.scoped(queues), close: async () => {} })),
  },
  {
    name: 'HttpTransport → createApp over HTTP (role worker)',
    postgres: true,
    start: () =>
      postgresSubject(async (api, db) => {
        const events = new JobEvents({ sql: db.sql, listenSql: db.sql, log: silentLogger });
        const app = createApp({
          sql: db.sql, ...api, events, log: silentLogger, version: 'conformance', role: 'api', listenQueues: [],
          apiKeys: [], workerKeys: [{ secret: WORKER_KEY, queues: '*' }], workerTokenSecret: TOKEN_SECRET, bodyLimitBytes: 4_194_304, dequeueMaxWaitMs: 30_000,
        });
        const { server, url } = await listen(app.fetch);
        // No retries: a conformance failure should show the first answer, not a retried one.
        const transport = new HttpTransport({ apiUrl: url, token: WORKER_KEY, retry: { attempts: 1 } });
        const extra: HttpTransport[] = [];
        return {
          transport,
          scoped: async (queues) => {
            const t = new HttpTransport({ apiUrl: url, token: await mintWorkerToken({ secret: TOKEN_SECRET, queues, ttlSeconds: 600 }), retry: { attempts: 1 } });
            extra.push(t);
            return t;
          },
          close: async () => {
            await transport.close();
            for (const t of extra) await t.close();
            await new Promise<void>((resolve) => {
              server.close(() => resolve());
              (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
            });
            await events.stop();
          },
        };
      }),
  },
  {
    name: 'FakeTransport (runtime unit tests)',
    postgres: false,
    start: async () => {
      const fake = new FakeTransport({ leaseMs: LEASE_MS });
      const get = (id: number): JobView => {
        const j = fake.job(id);
        if (!j) throw new Error(`fake: no job ${id}`);
        const { runAt: _runAt, leaseToken: _leaseToken, ...view } = j;
        return view;
      };
      return {
        transport: fake,
        scoped: async (queues) => fake.scoped(queues),
        enqueue: async (job) => fake.push({ task: job.task ?? 'conformance.task', queue: job.queue, payload: job.payload, ...(job.maxAttempts !== undefined && { maxAttempts: job.maxAttempts }) })[0]!.id,
        job: async (id) => get(id),
        cancel: async (id) => fake.cancel(id),
        expireLease: async (id) => fake.expireLease(id),
        close: async () => {},
      };
    },
  },
];
