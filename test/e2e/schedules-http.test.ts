import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgDispatchClient } from '@pgdispatch/client/client';
import { parseConfig } from '@pgdispatch/core/config';
import { silentLogger } from '@pgdispatch/core/log';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { startServer, type RunningServer } from '@pgdispatch/server/serve';
import { CLI, REPO, waitFor } from '../helpers/processes.js';

// /v1/schedules on the real server (role api, ephemeral port, real database), through raw HTTP,
// the typed client and the built CLI; the server's own scheduler loop fires the ticks.
const ADMIN = 'admin-key-000001';
const READER = 'reader-key-00001';

let db: TestDatabase;
let server: RunningServer;
let admin: PgDispatchClient;

beforeAll(async () => {
  db = await createTestDatabase();
  const config = parseConfig({
    DISPATCH_ROLE: 'api', DATABASE_URL: db.url, HOST: '127.0.0.1', PORT: '0',
    API_KEYS: `${ADMIN}:admin,${READER}:read`, WORKER_KEYS: `${'w'.repeat(20)}:*`,
    MAX_PAYLOAD_BYTES: '2048', BODY_LIMIT_BYTES: '8192', SCHEDULER_INTERVAL_MS: '100',
  });
  server = await startServer(config, { log: silentLogger });
  admin = new PgDispatchClient({ baseUrl: server.url, apiKey: ADMIN, retry: { attempts: 1 } });
});
afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

const call = async (method: string, p: string, opts: { key?: string; body?: unknown; raw?: string } = {}) => {
  const h: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.key) h.authorization = `Bearer ${opts.key}`;
  const res = await fetch(`${server.url}${p}`, { method, headers: h, ...(opts.raw !== undefined ? { body: opts.raw } : opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : {} };
};
const yearly = { cron: '0 0 1 1 *', queue: 'reports', task: 'report.yearly' };
const scheduleRows = async () => (await db.sql<{ n: number }[]>`select count(*)::int as n from schedules`)[0]!.n;

describe('/v1/schedules', () => {
  it('read scope sees, admin scope changes, no key is 401', async () => {
    expect((await call('GET', '/v1/schedules')).status).toBe(401);
    expect((await call('POST', '/v1/schedules', { key: READER, body: { name: 'ro', ...yearly } })).status).toBe(403);
    const created = await call('POST', '/v1/schedules', { key: ADMIN, body: { name: 'auth', ...yearly } });
    expect(created.status).toBe(201);
    expect(created.body.schedule).toMatchObject({ name: 'auth', timeZone: 'UTC', catchUp: 'latest', enabled: true });
    expect((await call('GET', '/v1/schedules/auth', { key: READER })).status).toBe(200);
    expect((await call('GET', '/v1/schedules', { key: READER })).body.schedules.map((s: { name: string }) => s.name)).toContain('auth');
    for (const [method, path] of [['PATCH', '/v1/schedules/auth'], ['DELETE', '/v1/schedules/auth'], ['POST', '/v1/schedules/auth/pause'], ['POST', '/v1/schedules/auth/resume']] as const) {
      expect((await call(method, path, { key: READER, body: {} })).status, `${method} ${path}`).toBe(403);
    }
  });

  it.each([
    ['a 4-field cron', { cron: '* * * *' }, 'cron'],
    ['a cron with a bad minute', { cron: '99 * * * *' }, 'cron'],
    ['a cron that never fires', { cron: '0 0 30 2 *' }, 'cron'],
    ['an unknown time zone', { timeZone: 'Moon/Tranquility' }, 'timeZone'],
    ['a bad queue name', { queue: 'Reports!' }, 'queue'],
    ['an empty task', { task: '' }, 'task'],
    ['a payload with NUL', { payload: { x: '\u0000' } }, 'payload'],
    ['an unknown field', { color: 'blue' }, ''],
    ['an unknown catch-up policy', { catchUp: 'sometimes' }, 'catchUp'],
  ])('create with %s is 400 naming the field, and writes nothing', async (_label, patch, field) => {
    const before = await scheduleRows();
    const r = await call('POST', '/v1/schedules', { key: ADMIN, body: { name: 'bad', ...yearly, ...patch } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid_request');
    expect(r.body.error.details.map((d: { path: string }) => d.path)).toContain(field);
    expect(await scheduleRows()).toBe(before);
  });

  it('malformed JSON is 400, a payload over MAX_PAYLOAD_BYTES is 413, a duplicate name is 409, unknown names are 404', async () => {
    expect((await call('POST', '/v1/schedules', { key: ADMIN, raw: '{"name":' })).status).toBe(400);
    expect((await call('POST', '/v1/schedules', { key: ADMIN, body: { name: 'huge', ...yearly, payload: { s: 'x'.repeat(3000) } } })).status).toBe(413);
    await admin.createSchedule({ name: 'dup', ...yearly });
    const dup = await call('POST', '/v1/schedules', { key: ADMIN, body: { name: 'dup', ...yearly } });
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe('conflict');
    for (const [method, path] of [['GET', '/v1/schedules/nope'], ['PATCH', '/v1/schedules/nope'], ['DELETE', '/v1/schedules/nope'], ['POST', '/v1/schedules/nope/pause']] as const) {
      expect((await call(method, path, { key: ADMIN, ...(method === 'GET' ? {} : { body: {} }) })).status, `${method} ${path}`).toBe(404);
    }
    expect((await call('GET', '/v1/schedules/Bad%20Name', { key: ADMIN })).status).toBe(400);
    expect((await call('PATCH', '/v1/schedules/dup', { key: ADMIN, body: { timeZone: 'Not/AZone' } })).status).toBe(400);
  });

  it('the typed client creates, reads, updates, pauses, resumes and deletes', async () => {
    const s = await admin.createSchedule({ name: 'client', cron: '30 2 * * *', timeZone: 'Europe/Berlin', queue: 'reports', task: 'r', payload: { a: 1 }, catchUp: 'all' });
    expect(s.nextRunAt).toBeInstanceOf(Date);
    expect((await admin.getSchedule('client')).payload).toEqual({ a: 1 });
    expect((await admin.listSchedules({ queue: 'reports' })).map((x) => x.name)).toContain('client');
    const u = await admin.updateSchedule('client', { priority: 5, maxAttempts: 2 });
    expect(u).toMatchObject({ priority: 5, maxAttempts: 2, cron: '30 2 * * *', catchUp: 'all' });
    expect((await admin.pauseSchedule('client')).enabled).toBe(false);
    expect((await admin.resumeSchedule('client')).enabled).toBe(true);
    expect((await admin.deleteSchedule('client')).name).toBe('client');
    await expect(admin.getSchedule('client')).rejects.toMatchObject({ code: 'not_found' });
  });

  it("the server's scheduler loop fires a one-second schedule, once per tick, and counts it in /metrics", async () => {
    await admin.createSchedule({ name: 'every-second', cron: '* * * * * *', queue: 'ticks', task: 'noop', catchUp: 'all' });
    const keys = await waitFor(async () => {
      const rows = await db.sql<{ key: string }[]>`select idempotency_key as key from jobs where idempotency_key like 'schedule:every-second:%' order by 1`;
      return rows.length >= 3 && rows.map((r) => r.key);
    }, { timeoutMs: 15_000, what: 'three ticks' });
    const secs = keys.map((k) => Date.parse(k.slice('schedule:every-second:'.length)) / 1000);
    expect(secs).toEqual(secs.map((_, i) => secs[0]! + i));
    await admin.pauseSchedule('every-second');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const fired = /pgdispatch_schedule_ticks_total\{schedule="every-second",outcome="fired"\} (\d+)/.exec(metrics);
    expect(Number(fired?.[1])).toBeGreaterThanOrEqual(3);
  });

  it('/openapi.json documents the schedule routes with their request schemas', async () => {
    const doc = (await call('GET', '/openapi.json')).body;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/schedules', '/v1/schedules/{name}', '/v1/schedules/{name}/pause', '/v1/schedules/{name}/resume']));
    expect(doc.paths['/v1/schedules'].post.requestBody.content['application/json'].schema.properties.catchUp.enum).toEqual(['all', 'latest', 'none']);
  });

  it('the CLI: schedules create, list, pause, resume, update and delete', async () => {
    const run = async (...args: string[]) => {
      const { stdout } = await promisify(execFile)(process.execPath, [CLI, '--url', server.url, '--api-key', ADMIN, 'schedules', ...args], { cwd: REPO, env: { PATH: process.env.PATH ?? '' } });
      return JSON.parse(stdout) as any;
    };
    expect(await run('create', 'from-cli', '*/5 * * * *', 'cli-queue', 'noop', '--catch-up', 'none', '--payload', '{"k":1}', '--time-zone', 'America/New_York')).toMatchObject({
      name: 'from-cli', cron: '*/5 * * * *', catchUp: 'none', payload: { k: 1 }, timeZone: 'America/New_York',
    });
    expect((await run('list', '--queue', 'cli-queue')).map((s: { name: string }) => s.name)).toEqual(['from-cli']);
    expect((await run('pause', 'from-cli')).enabled).toBe(false);
    expect((await run('resume', 'from-cli')).enabled).toBe(true);
    expect((await run('update', 'from-cli', '--cron', '0 * * * *', '--priority', '3'))).toMatchObject({ cron: '0 * * * *', priority: 3 });
    expect((await run('delete', 'from-cli')).name).toBe('from-cli');
    const bad = await promisify(execFile)(process.execPath, [CLI, '--url', server.url, '--api-key', ADMIN, 'schedules', 'create', 'x', '1 2 3', 'q', 't'], { cwd: REPO }).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { code: number }).code).toBe(1);
    expect((bad as { stderr: string }).stderr).toMatch(/invalid_request/);
  });
});
