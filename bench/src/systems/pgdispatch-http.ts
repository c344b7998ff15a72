import { postJson } from '../lib/http.js';
import type { BenchDb } from '../lib/pg-target.js';
import { installPgdispatch } from './pgdispatch-engine.js';
import { API_KEY, serverPending, startServerProcess } from './pgdispatch-server.js';
import type { BenchContext, Enqueuer, EnqueueTarget } from './types.js';
import { QUEUE, TASK } from './types.js';

/**
 * Enqueue through the public HTTP API of an `api` process: POST /v1/queues/:queue/jobs (one job)
 * and /jobs/batch?return=ids (up to 1000), over a keep-alive node:http agent. Bulk asks for ids
 * only, as a bulk loader does (the client's enqueueBatchIds); the engine reference bulk-loads
 * with jobEnqueueManyIds, so both sides do the same database work.
 */
async function post(url: string, body: unknown): Promise<void> {
  const res = await postJson(url, body, { authorization: `Bearer ${API_KEY}` });
  if (res.status !== 201 && res.status !== 200) throw new Error(`POST ${url}: ${res.status} ${res.body.slice(0, 300)}`);
}

export const httpEnqueue: EnqueueTarget = {
  id: 'pgdispatch (HTTP api)',
  system: 'pgdispatch',
  pending: serverPending,
  install: installPgdispatch,
  open: async (ctx: BenchContext, db: BenchDb): Promise<Enqueuer> => {
    const api = await startServerProcess(ctx, { role: 'api', db, name: 'enqueue-api' });
    const one = `${api.url}/v1/queues/${QUEUE}/jobs`;
    const batch = `${api.url}/v1/queues/${QUEUE}/jobs/batch?return=ids`;
    return {
      single: (payload) => post(one, { task: TASK, payload }),
      bulk: (payloads) => post(batch, { jobs: payloads.map((payload) => ({ task: TASK, payload })) }),
      close: () => api.child.stop(),
    };
  },
};
