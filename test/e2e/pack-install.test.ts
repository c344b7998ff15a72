import { execFile } from 'node:child_process';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { REPO, spawnServer, waitFor, type ServerProcess } from '../helpers/processes.js';

// The packages the way a team meets them: `npm pack` @pgdispatch/core, client and worker, install
// the tarballs into a fresh project outside the repository (registry packages from the local npm
// cache, nothing else from the checkout), write a tasks module there, and run it against a real
// api process: once with the `pgdispatch-worker` bin, once embedded with createWorker in a small
// service. The same project type-checks a producer against the installed .d.ts files with tsc.
const run = promisify(execFile);
/** The environment without npm's script variables (npm_config_local_prefix & co. would point a child npm at the repository). */
const cleanEnv = (): Record<string, string> => Object.fromEntries(Object.entries(process.env).filter(([k, v]) => !/^npm_/i.test(k) && v !== undefined)) as Record<string, string>;
const API_KEY = 'pack-admin-key-0001';
const WORKER_KEY = 'pack-worker-key-0000000001';
const PACKAGES = ['core', 'client', 'worker'];

let db: TestDatabase;
let api: ServerProcess;
let project: string;
let tarballEntries: Record<string, string[]> = {};
const children: ChildProcess[] = [];

const headers = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };
async function jobOf(id: number): Promise<{ state: string; result: unknown; attempt: number }> {
  return ((await (await fetch(`${api.url}/v1/jobs/${id}`, { headers })).json()) as { job: { state: string; result: unknown; attempt: number } }).job;
}

/** Runs `node <args>` in the project; resolves once a stdout line contains `ready`, with that line parsed as JSON. */
function startInProject(args: string[], env: Record<string, string>, ready: string): Promise<{ proc: ChildProcess; line: Record<string, unknown>; output: () => string }> {
  const proc = spawn(process.execPath, args, { cwd: project, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not get ready:\n${out}`)), 20_000);
    proc.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    proc.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      const line = out.split('\n').find((l) => l.includes(ready));
      if (!line) return;
      clearTimeout(timer);
      resolve({ proc, line: JSON.parse(line) as Record<string, unknown>, output: () => out });
    });
    proc.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}:\n${out}`)));
  });
}

const exited = (p: ChildProcess) => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve(p.exitCode) : new Promise<number | null>((r) => p.once('exit', (code) => r(code))));

beforeAll(async () => {
  project = await mkdtemp(path.join(tmpdir(), 'pgdispatch-user-'));
  expect(path.relative(REPO, project).startsWith('..')).toBe(true);
  const tarballs = path.join(project, 'tarballs');
  await mkdir(tarballs);
  await run('npm', ['pack', '--silent', '--pack-destination', tarballs, ...PACKAGES.flatMap((p) => ['--workspace', `packages/${p}`])], { cwd: REPO, env: cleanEnv() });
  const files = await readdir(tarballs);
  tarballEntries = Object.fromEntries(
    await Promise.all(PACKAGES.map(async (p) => [p, (await run('tar', ['-tzf', path.join(tarballs, files.find((f) => f.startsWith(`pgdispatch-${p}-`))!)])).stdout.split('\n').filter(Boolean)] as const)),
  );
  const tgz = (name: string) => `file:${path.join(tarballs, files.find((f) => f.startsWith(`pgdispatch-${name}-`))!)}`;
  await writeFile(
    path.join(project, 'package.json'),
    JSON.stringify({
      name: 'team-service',
      private: true,
      type: 'module',
      dependencies: { '@pgdispatch/client': tgz('client'), '@pgdispatch/worker': tgz('worker'), zod: '^4.1.0' },
      devDependencies: { typescript: '~5.9.3', '@types/node': '^20.19.0' },
      // Not on the registry yet: the packages' dependency on core resolves to its tarball too.
      overrides: { '@pgdispatch/core': tgz('core') },
    }),
  );
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], { cwd: project, env: cleanEnv() });

  db = await createTestDatabase();
  api = await spawnServer({ DISPATCH_ROLE: 'api', DATABASE_URL: db.url, API_KEYS: `${API_KEY}:admin`, WORKER_KEYS: `${WORKER_KEY}:*`, POLL_INTERVAL_MS: '200' });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await api?.kill('SIGTERM');
  await db?.drop();
  if (project) await rm(project, { recursive: true, force: true });
});

// The team's code, written against the installed packages only.
const CONTRACT = `import { z } from 'zod';
import { defineTask } from '@pgdispatch/client';
// The task's contract: shared by the producer and the worker.
export const greet = defineTask({ name: 'team.greet', queue: 'greetings', payload: z.object({ name: z.string(), times: z.number().int().default(1) }) });
`;
const TASKS = `import { defineTask } from '@pgdispatch/worker';
import { greet } from './contract.mjs';
export const tasks = [defineTask({ ...greet, handler: ({ name, times }, ctx) => ({ greeting: 'hello ' + name.repeat(times), pid: process.pid, attempt: ctx.attempt }) })];
`;
const ENQUEUE = `import { PgDispatchClient } from '@pgdispatch/client';
import { greet } from './contract.mjs';
const client = new PgDispatchClient({ baseUrl: process.env.API_URL, apiKey: process.env.API_KEY });
const { job } = await client.enqueue(greet, { name: process.argv[2] });
let refused = null;
try { await client.enqueue(greet, { name: 42 }); } catch (err) { refused = err.code; }
console.log(JSON.stringify({ enqueued: job.id, queue: job.queue, refused }));
`;
const SERVICE = `import { createServer } from 'node:http';
import { createWorker, createJsonLogger } from '@pgdispatch/worker';
import { tasks } from './tasks.mjs';
// An existing service that also runs a pgdispatch worker in its own process.
const worker = createWorker({ apiUrl: process.env.API_URL, token: process.env.WORKER_TOKEN, tasks, concurrency: 2, log: createJsonLogger({ level: 'warn' }) });
worker.start();
const server = createServer((req, res) => {
  const r = worker.readiness();
  res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(r));
}).listen(0, '127.0.0.1', () => console.log(JSON.stringify({ msg: 'service up', port: server.address().port })));
process.once('SIGTERM', async () => { await worker.stop(); server.close(); console.log(JSON.stringify({ msg: 'service stopped', stats: worker.stats() })); });
`;
const PRODUCER_TS = `import { z } from 'zod';
import { PgDispatchClient, defineTask, type TaskPayload } from '@pgdispatch/client';
import { defineTask as defineWorkerTask } from '@pgdispatch/worker';

const greet = defineTask({ name: 'team.greet', queue: 'greetings', payload: z.object({ name: z.string(), times: z.number().int().default(1) }) });
const client = new PgDispatchClient({ baseUrl: 'http://localhost:8080' });

export async function produce(): Promise<void> {
  const ok: TaskPayload<typeof greet> = { name: 'Ada' };
  await client.enqueue(greet, ok);
  await client.enqueue(greet, { name: 'Ada', times: 2 }, { priority: 1, idempotencyKey: 'k' });
  // @ts-expect-error name must be a string
  await client.enqueue(greet, { name: 42 });
  // @ts-expect-error name is required
  await client.enqueue(greet, { times: 1 });
  // @ts-expect-error no such field in the schema
  await client.enqueue(greet, { name: 'Ada', colour: 'red' });

  // A worker-side definition types its producers the same way; its handler gets the parsed output.
  const impl = defineWorkerTask({ ...greet, handler: ({ name, times }) => name.repeat(times) });
  await client.enqueue(impl, { name: 'Bob' });
  // @ts-expect-error times must be a number
  await client.enqueue(impl, { name: 'Bob', times: 'twice' });

  // Untyped forms keep working (any task by name, e.g. for other languages' tasks).
  await client.enqueue({ queue: 'greetings', task: 'team.greet', payload: { anything: true } });
  await client.enqueue('greetings', { task: 'team.greet', payload: {} });
}
`;

describe('the published packages, installed from their tarballs outside the repository', () => {
  it('each tarball holds built JS, .d.ts, README, LICENSE and its package.json, and no tests', () => {
    for (const p of PACKAGES) {
      const entries = tarballEntries[p]!;
      const main = p === 'core' ? 'errors' : 'index'; // core has subpath exports only
      expect(entries).toEqual(expect.arrayContaining(['package/package.json', 'package/README.md', 'package/LICENSE', `package/dist/${main}.js`, `package/dist/${main}.d.ts`]));
      expect(entries.filter((e) => /\.test\.|\/testing\//.test(e))).toEqual([]);
    }
    expect(tarballEntries.worker).toContain('package/dist/bin.js');
  });

  it('pgdispatch-worker runs a tasks module from the project against a real api; the producer enqueues with the typed client', async () => {
    await writeFile(path.join(project, 'contract.mjs'), CONTRACT);
    await writeFile(path.join(project, 'tasks.mjs'), TASKS);
    await writeFile(path.join(project, 'enqueue.mjs'), ENQUEUE);
    const worker = await startInProject(
      ['node_modules/.bin/pgdispatch-worker', './tasks.mjs'],
      { API_URL: api.url, WORKER_TOKEN: WORKER_KEY, HOST: '127.0.0.1', PORT: '0' },
      'pgdispatch worker serving',
    );
    expect(worker.line.tasks).toContain('team.greet');
    const ready = await waitFor(async () => {
      const res = await fetch(`${String(worker.line.url)}/readyz`);
      return res.status === 200 ? ((await res.json()) as { api: { state: string } }) : undefined;
    }, { what: 'the worker to be ready' });
    expect(ready.api.state).toBe('ok');

    const { stdout } = await run(process.execPath, ['enqueue.mjs', 'Ada'], { cwd: project, env: { PATH: process.env.PATH ?? '', API_URL: api.url, API_KEY } });
    const out = JSON.parse(stdout) as { enqueued: number; queue: string; refused: string | null };
    expect(out).toMatchObject({ queue: 'greetings', refused: 'invalid_request' });
    const done = await waitFor(async () => {
      const job = await jobOf(out.enqueued);
      return job.state === 'succeeded' ? job : undefined;
    }, { what: 'the job to succeed' });
    expect(done.result).toEqual({ greeting: 'hello Ada', pid: worker.proc.pid, attempt: 1 });
    worker.proc.kill('SIGTERM');
    expect(await exited(worker.proc)).toBe(0);
  });

  it('createWorker runs inside an existing service process', async () => {
    await writeFile(path.join(project, 'contract.mjs'), CONTRACT);
    await writeFile(path.join(project, 'tasks.mjs'), TASKS);
    await writeFile(path.join(project, 'service.mjs'), SERVICE);
    const service = await startInProject(['service.mjs'], { API_URL: api.url, WORKER_TOKEN: WORKER_KEY }, 'service up');
    const res = await fetch(`${api.url}/v1/queues/greetings/jobs`, { method: 'POST', headers, body: JSON.stringify({ task: 'team.greet', payload: { name: 'Lin', times: 2 } }) });
    const { job } = (await res.json()) as { job: { id: number } };
    const done = await waitFor(async () => {
      const j = await jobOf(job.id);
      return j.state === 'succeeded' ? j : undefined;
    }, { what: 'the embedded worker to run the job' });
    expect(done.result).toEqual({ greeting: 'hello LinLin', pid: service.proc.pid, attempt: 1 });
    const health = await fetch(`http://127.0.0.1:${String(service.line.port)}/`);
    expect(health.status).toBe(200);
    service.proc.kill('SIGTERM');
    expect(await exited(service.proc)).toBe(0);
    expect(service.output()).toContain('service stopped');
  });

  it('types a producer end to end: tsc accepts payloads that match the schema and rejects the rest', { timeout: 120_000 }, async () => {
    await writeFile(path.join(project, 'producer.ts'), PRODUCER_TS);
    // The check bites: the same wrong payload without the directive must be a type error.
    await writeFile(path.join(project, 'producer-bad.ts'), PRODUCER_TS.replace('  // @ts-expect-error name must be a string\n', ''));
    await writeFile(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', lib: ['ES2023'], types: ['node'], noEmit: true, skipLibCheck: true },
        files: ['producer.ts', 'producer-bad.ts'],
      }),
    );
    // One tsc run (it is the slow part): every @ts-expect-error in producer.ts must be needed (an
    // unused one is an error) and nothing else there may fail; producer-bad.ts fails exactly once.
    const out = await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { cwd: project }).then(
      () => '',
      (err: { stdout: string }) => err.stdout,
    );
    const errors = out.split('\n').filter((l) => /error TS\d+/.test(l));
    expect(errors.filter((l) => l.startsWith('producer.ts'))).toEqual([]);
    expect(errors).toHaveLength(1);
    // (enqueue has overloads, so tsc reports the mismatch as "no overload matches", TS2769)
    expect(errors[0]).toMatch(/^producer-bad\.ts\(\d+,\d+\): error TS2769: No overload matches this call/);
  });
});
