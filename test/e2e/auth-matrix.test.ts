// The auth matrix: every route of the api (public routes from /openapi.json, internal ones from
// the contract's route table) × every kind of credential, against the real server on an
// ephemeral port and a real database. Each cell gets a fresh fixture; a refused cell must leave
// the database exactly as it was (jobs, steps and queues compared row by row).
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '@pgdispatch/core/config';
import { INTERNAL_ROUTES } from '@pgdispatch/core/internal-api';
import { silentLogger } from '@pgdispatch/core/log';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { claimOne, insertJob } from '@pgdispatch/engine/testing/factories';
import { startServer, type RunningServer } from '@pgdispatch/server/serve';

const SECRET = 's'.repeat(40);
const KEYS = { admin: 'matrix-admin-key-01', read: 'matrix-read-key-001', enqueue: 'matrix-enq-key-0001', readEnqueue: 'matrix-re-key-00001' };
const STATIC_OTHER = 'matrix-static-other-01';

function b64url(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}
/** A worker JWT crafted by hand, so the broken variants (alg none, wrong audience) can be made too. */
function jwt(opts: { queues: unknown; exp?: number; secret?: string; alg?: 'HS256' | 'none'; aud?: string }): string {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url({ alg: opts.alg ?? 'HS256', typ: 'JWT' });
  const payload = b64url({ queues: opts.queues, iss: 'pgdispatch', aud: opts.aud ?? 'pgdispatch-worker', sub: 'matrix', iat: now, exp: opts.exp ?? now + 600 });
  if (opts.alg === 'none') return `${header}.${payload}.`;
  const sig = createHmac('sha256', opts.secret ?? SECRET).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${sig}`;
}

type Scope = 'read' | 'enqueue' | 'admin';
type Column = 'none' | 'wrongKind' | 'expired' | 'wrongSecret' | 'algNone' | 'wrongScope' | 'otherQueue' | 'staticKey' | 'valid';
const COLUMNS: Column[] = ['none', 'wrongKind', 'expired', 'wrongSecret', 'algNone', 'wrongScope', 'otherQueue', 'staticKey', 'valid'];

/** The credential a cell sends, by route kind. */
function credential(col: Column, kind: 'public' | 'internal', scope: Scope | undefined): string | undefined {
  const workerMine = jwt({ queues: ['mine', 'other'] });
  switch (col) {
    case 'none': return undefined;
    case 'wrongKind': return kind === 'public' ? workerMine : KEYS.admin;
    case 'expired': return jwt({ queues: ['mine', 'other'], exp: Math.floor(Date.now() / 1000) - 60 });
    case 'wrongSecret': return kind === 'public' ? 'matrix-unknown-key-1' : jwt({ queues: ['mine', 'other'], secret: 'w'.repeat(40) });
    case 'algNone': return jwt({ queues: ['mine', 'other'], alg: 'none' });
    // Public: a key without the route's scope. Internal: a token minted for another audience.
    case 'wrongScope': return kind === 'public' ? { read: KEYS.enqueue, enqueue: KEYS.read, admin: KEYS.readEnqueue }[scope ?? 'read'] : jwt({ queues: ['mine', 'other'], aud: 'pgdispatch-api' });
    case 'otherQueue': return jwt({ queues: ['other'] });
    case 'staticKey': return STATIC_OTHER;
    case 'valid': return kind === 'public' ? { read: KEYS.read, enqueue: KEYS.enqueue, admin: KEYS.admin }[scope ?? 'read'] : workerMine;
  }
}

/** What a cell must answer: a status, or `403` for a batch whose every item is refused `forbidden`. */
function expected(col: Column, kind: 'public' | 'internal'): 'ok' | 401 | 403 {
  if (col === 'valid') return 'ok';
  if (kind === 'public') return col === 'wrongScope' ? 403 : 401;
  return col === 'otherQueue' || col === 'staticKey' ? 403 : 401;
}

interface Fixture {
  path: string;
  body?: unknown;
}
interface Row {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** As /openapi.json or INTERNAL_ROUTES spell it. */
  route: string;
  kind: 'public' | 'internal';
  scope?: Scope;
  setup: () => Promise<Fixture>;
  /** Cells that differ from the rule of `expected()` (a route open by design). */
  except?: Partial<Record<Column, 'ok' | 401 | 403>>;
}

let db: TestDatabase;
let server: RunningServer;

const running = async () => {
  await insertJob(db.sql, { queue: 'mine' });
  return claimOne(db.sql, 'mine');
};
const jobIn = async (state: 'queued' | 'failed' | 'succeeded') => (await insertJob(db.sql, { queue: 'mine', state })).id;
let scheduleSeq = 0;
/** A fresh yearly schedule of queue mine, inserted directly; returns its name. */
const schedule = async () => {
  const name = `sched-${++scheduleSeq}`;
  await db.sql`insert into schedules (name, cron, queue, task, next_run_at) values (${name}, '0 0 1 1 *', 'mine', 'noop', now() + interval '30 days')`;
  return name;
};

const ROWS: Row[] = [
  { method: 'POST', route: '/v1/queues/{queue}/jobs', kind: 'public', scope: 'enqueue', setup: async () => ({ path: '/v1/queues/mine/jobs', body: { task: 'noop' } }) },
  { method: 'POST', route: '/v1/queues/{queue}/jobs/batch', kind: 'public', scope: 'enqueue', setup: async () => ({ path: '/v1/queues/mine/jobs/batch', body: { jobs: [{ task: 'noop' }] } }) },
  { method: 'GET', route: '/v1/jobs', kind: 'public', scope: 'read', setup: async () => ({ path: '/v1/jobs?queue=mine' }) },
  { method: 'GET', route: '/v1/jobs/{id}', kind: 'public', scope: 'read', setup: async () => ({ path: `/v1/jobs/${(await running()).id}` }) },
  { method: 'POST', route: '/v1/jobs/{id}/cancel', kind: 'public', scope: 'admin', setup: async () => ({ path: `/v1/jobs/${await jobIn('queued')}/cancel` }) },
  { method: 'POST', route: '/v1/jobs/{id}/retry', kind: 'public', scope: 'admin', setup: async () => ({ path: `/v1/jobs/${await jobIn('failed')}/retry` }) },
  { method: 'GET', route: '/v1/jobs/{id}/events', kind: 'public', scope: 'read', setup: async () => ({ path: `/v1/jobs/${await jobIn('succeeded')}/events` }) },
  { method: 'GET', route: '/v1/queues', kind: 'public', scope: 'read', setup: async () => ({ path: '/v1/queues' }) },
  { method: 'PUT', route: '/v1/queues/{name}', kind: 'public', scope: 'admin', setup: async () => ({ path: '/v1/queues/policy', body: { concurrencyLimit: 7 } }) },
  { method: 'POST', route: '/v1/queues/{name}/pause', kind: 'public', scope: 'admin', setup: async () => ({ path: '/v1/queues/policy/pause' }) },
  { method: 'POST', route: '/v1/queues/{name}/resume', kind: 'public', scope: 'admin', setup: async () => ({ path: '/v1/queues/policy/resume' }) },
  { method: 'GET', route: '/v1/queues/{name}/stats', kind: 'public', scope: 'read', setup: async () => ({ path: '/v1/queues/mine/stats' }) },
  { method: 'GET', route: '/v1/queues/{name}/events', kind: 'public', scope: 'read', setup: async () => ({ path: '/v1/queues/mine/events' }) },
  { method: 'GET', route: '/v1/events', kind: 'public', scope: 'read', setup: async () => ({ path: '/v1/events' }) },
  ...(['retry', 'cancel', 'delete'] as const).map((op): Row => ({
    method: 'POST', route: `/v1/jobs/bulk/${op}`, kind: 'public', scope: 'admin',
    setup: async () => (await insertJob(db.sql, { queue: 'bulkq', state: op === 'cancel' ? 'queued' : 'failed' }), { path: `/v1/jobs/bulk/${op}`, body: { queue: 'bulkq', limit: 5 } }),
  })),
  { method: 'POST', route: '/v1/queues/{name}/redrive', kind: 'public', scope: 'admin', setup: async () => ({ path: '/v1/queues/mine/redrive', body: { limit: 5 } }) },
  { method: 'GET', route: '/v1/schedules', kind: 'public', scope: 'read', setup: async () => ({ path: '/v1/schedules' }) },
  { method: 'POST', route: '/v1/schedules', kind: 'public', scope: 'admin', setup: async () => ({ path: '/v1/schedules', body: { name: `new-${++scheduleSeq}`, cron: '0 0 1 1 *', queue: 'mine', task: 'noop' } }) },
  { method: 'GET', route: '/v1/schedules/{name}', kind: 'public', scope: 'read', setup: async () => ({ path: `/v1/schedules/${await schedule()}` }) },
  { method: 'PATCH', route: '/v1/schedules/{name}', kind: 'public', scope: 'admin', setup: async () => ({ path: `/v1/schedules/${await schedule()}`, body: { priority: 3 } }) },
  { method: 'DELETE', route: '/v1/schedules/{name}', kind: 'public', scope: 'admin', setup: async () => ({ path: `/v1/schedules/${await schedule()}` }) },
  { method: 'POST', route: '/v1/schedules/{name}/pause', kind: 'public', scope: 'admin', setup: async () => ({ path: `/v1/schedules/${await schedule()}/pause` }) },
  { method: 'POST', route: '/v1/schedules/{name}/resume', kind: 'public', scope: 'admin', setup: async () => ({ path: `/v1/schedules/${await schedule()}/resume` }) },
  { method: 'GET', route: '/v1/jobs/{id}/steps', kind: 'public', scope: 'read', setup: async () => ({ path: `/v1/jobs/${(await running()).id}/steps` }) },
  { method: 'GET', route: '/v1/stats/queues', kind: 'public', scope: 'read', setup: async () => ({ path: '/v1/stats/queues' }) },
  { method: 'GET', route: '/v1/stats/throughput', kind: 'public', scope: 'read', setup: async () => ({ path: '/v1/stats/throughput' }) },
  { method: 'GET', route: '/v1/workers', kind: 'public', scope: 'read', setup: async () => ({ path: '/v1/workers' }) },
  // Open by design: without a key it answers `authenticated: false`; any key it knows is fine; a bad one is 401.
  { method: 'GET', route: '/v1/whoami', kind: 'public', scope: 'read', setup: async () => ({ path: '/v1/whoami' }), except: { none: 'ok', wrongScope: 'ok' } },

  { method: 'POST', route: INTERNAL_ROUTES.dequeue, kind: 'internal', setup: async () => (await jobIn('queued'), { path: INTERNAL_ROUTES.dequeue, body: { queues: ['mine'], max: 1, waitMs: 2_000 } }) },
  { method: 'POST', route: INTERNAL_ROUTES.heartbeat, kind: 'internal', setup: async () => ({ path: INTERNAL_ROUTES.heartbeat, body: { items: [ref(await running())] } }) },
  { method: 'POST', route: INTERNAL_ROUTES.release, kind: 'internal', setup: async () => ({ path: INTERNAL_ROUTES.release, body: { items: [ref(await running())] } }) },
  { method: 'POST', route: INTERNAL_ROUTES.complete, kind: 'internal', setup: async () => withJob('complete', { result: 1 }) },
  { method: 'POST', route: INTERNAL_ROUTES.completeMany, kind: 'internal', setup: async () => ({ path: INTERNAL_ROUTES.completeMany, body: { items: [{ ...ref(await running()), result: 1 }] } }) },
  { method: 'POST', route: INTERNAL_ROUTES.failMany, kind: 'internal', setup: async () => ({ path: INTERNAL_ROUTES.failMany, body: { items: [{ ...ref(await running()), error: { message: 'x' }, retryable: true }] } }) },
  { method: 'POST', route: INTERNAL_ROUTES.fail, kind: 'internal', setup: async () => withJob('fail', { error: { message: 'x' }, retryable: true }) },
  { method: 'POST', route: INTERNAL_ROUTES.stepsLoad, kind: 'internal', setup: async () => withJob('steps/load', {}) },
  { method: 'POST', route: INTERNAL_ROUTES.stepSave, kind: 'internal', setup: async () => withJob('steps', { name: 's', result: 1 }) },
  { method: 'POST', route: INTERNAL_ROUTES.progress, kind: 'internal', setup: async () => withJob('progress', { data: 1 }) },
  // The child goes to `other`, a queue the other-queue credential holds: only the parent's queue can refuse it.
  { method: 'POST', route: INTERNAL_ROUTES.children, kind: 'internal', setup: async () => withJob('children', { key: 'k', job: { queue: 'other', task: 'noop' } }) },
];
function ref(j: { id: number; leaseToken: string }) {
  return { id: j.id, leaseToken: j.leaseToken };
}
async function withJob(suffix: string, body: Record<string, unknown>): Promise<Fixture> {
  const j = await running();
  return { path: `/internal/v1/jobs/${j.id}/${suffix}`, body: { leaseToken: j.leaseToken, ...body } };
}

const snapshot = async () => JSON.stringify(await db.sql`
  select (select coalesce(json_agg(j order by j.id), '[]') from jobs j) as jobs,
         (select coalesce(json_agg(s order by s.job_id, s.name), '[]') from job_steps s) as steps,
         (select coalesce(json_agg(q order by q.name), '[]') from queues q) as queues`);

/** The snapshot 50 ms later (equal to `prev` when nothing is still writing). */
async function settle(prev: string): Promise<string> {
  await new Promise((r) => setTimeout(r, 50));
  const now = await snapshot();
  return now === prev ? prev : now;
}

async function call(method: string, path: string, token: string | undefined, body: unknown): Promise<{ status: number; json: Record<string, unknown> | null }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${server.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  // An event stream may stay open (a queue's stream never ends): its status is the answer.
  if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
    await res.body?.cancel();
    return { status: res.status, json: null };
  }
  const text = await res.text();
  let json: Record<string, unknown> | null = null;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = null; // the SSE stream is not JSON
  }
  return { status: res.status, json };
}

/** A batch answered 200 with every item refused: the per-item form of a refusal. */
function allItemsRefused(json: Record<string, unknown> | null, code: string): boolean {
  const items = json?.items;
  return Array.isArray(items) && items.length > 0 && items.every((i: { ok?: boolean; code?: string }) => i.ok === false && i.code === code);
}

beforeAll(async () => {
  db = await createTestDatabase();
  const config = parseConfig({
    DISPATCH_ROLE: 'api', DATABASE_URL: db.url, HOST: '127.0.0.1', PORT: '0',
    API_KEYS: `${KEYS.admin}:admin,${KEYS.read}:read,${KEYS.enqueue}:enqueue,${KEYS.readEnqueue}:read+enqueue`,
    WORKER_TOKEN_SECRET: SECRET, WORKER_KEYS: `${STATIC_OTHER}:other`,
  });
  server = await startServer(config, { log: silentLogger });
});
afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

describe('auth matrix: every route × every credential', () => {
  it('covers every route: public ones from /openapi.json, internal ones from INTERNAL_ROUTES', async () => {
    const doc = (await call('GET', '/openapi.json', undefined, undefined)).json as { paths: Record<string, Record<string, unknown>> };
    const publicRoutes = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    const internalRoutes = Object.values(INTERNAL_ROUTES).map((p) => `POST ${p}`);
    const covered = new Set(ROWS.map((r) => `${r.method} ${r.route}`));
    // A new route needs a row in ROWS (its fixture and scope): the matrix is only worth its name if complete.
    expect([...publicRoutes, ...internalRoutes].filter((r) => !covered.has(r))).toEqual([]);
  });

  it('answers each cell as expected and leaves the database unchanged by every refusal', async () => {
    const cells: { route: string; column: Column; want: string; got: string; dbChanged: boolean }[] = [];
    for (const row of ROWS) {
      for (const column of COLUMNS) {
        const fixture = await row.setup();
        const want = row.except?.[column] ?? expected(column, row.kind);
        const before = await snapshot();
        const res = await call(row.method, fixture.path, credential(column, row.kind, row.scope), fixture.body);
        let after = await snapshot();
        // A valid call may leave work behind its answer (a claim released after the reply): let the
        // database settle, so the next cell's "before" is really before it.
        if (want === 'ok') for (let i = 0; i < 20 && after !== (await settle(after)); i++) after = await snapshot();
        const ok = res.status >= 200 && res.status < 300 && !(Array.isArray(res.json?.items) && (res.json.items as { ok?: boolean }[]).some((i) => i.ok === false));
        const got = ok ? 'ok' : res.status === 200 && allItemsRefused(res.json, 'forbidden') ? '403' : String(res.status);
        cells.push({ route: `${row.method} ${row.route}`, column, want: String(want), got, dbChanged: before !== after });
        if (want !== 'ok' && got !== 'ok') {
          const code = res.status === 200 ? 'forbidden' : (res.json?.error as { code?: string } | undefined)?.code;
          expect(code, `${row.route} × ${column}: error code`).toBe(want === 401 ? 'unauthorized' : 'forbidden');
        }
      }
    }
    const wronglyAllowed = cells.filter((c) => c.want !== 'ok' && c.got === 'ok');
    const mismatched = cells.filter((c) => c.want !== c.got);
    const refusedButChanged = cells.filter((c) => c.want !== 'ok' && c.dbChanged);
    // The figures issue #10 asks for (and the cells, when something is off).
    console.log(`auth matrix: ${cells.length} cells (${ROWS.length} routes × ${COLUMNS.length} credentials), ${wronglyAllowed.length} wrongly allowed, ${mismatched.length} mismatched, ${refusedButChanged.length} refusals that changed the database`);
    expect(cells).toHaveLength(ROWS.length * COLUMNS.length);
    expect(mismatched.map((c) => `${c.route} × ${c.column}: want ${c.want}, got ${c.got}`)).toEqual([]);
    expect(refusedButChanged.map((c) => `${c.route} × ${c.column}`)).toEqual([]);
    // Every valid cell really did its work (a matrix that refuses everything would pass the above).
    expect(cells.filter((c) => c.column === 'valid' && c.got === 'ok')).toHaveLength(ROWS.length);
  });
});
