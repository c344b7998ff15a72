/**
 * The errors a newcomer met on a first run, each reproduced with the built CLI as a real process:
 * they must say what happened and which setting to change, before anything else starts.
 */
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { closeDb, createDb } from '@pgdispatch/engine/db';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { CLI } from '../helpers/processes.js';

const dirs: string[] = [];
function tempDir(mode = 0o755): string {
  const d = mkdtempSync(path.join(tmpdir(), 'pgdispatch-newcomer-'));
  chmodSync(d, mode);
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Runs the CLI with exactly `env` (+ PATH) and waits for it to exit, or kills it after `timeoutMs`. */
function cli(args: string[], env: Record<string, string>, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? tmpdir(), env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', ...env }, timeout: opts.timeoutMs ?? 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

describe('embedded PostgreSQL', () => {
  let held: Server;
  let port: number;
  beforeAll(async () => {
    held = createServer();
    port = await new Promise<number>((resolve) => held.listen(0, '127.0.0.1', () => resolve((held.address() as { port: number }).port)));
  });
  afterAll(() => new Promise<void>((resolve) => held.close(() => resolve())));

  it('a taken port says so and names EMBEDDED_PG_PORT and DATABASE_URL (it printed "failed to start: undefined")', async () => {
    const dir = tempDir();
    const r = await cli(['serve'], { PGDISPATCH_DATA_DIR: path.join(dir, 'data'), EMBEDDED_PG_PORT: String(port) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`);
    expect(r.stderr).toContain(`set EMBEDDED_PG_PORT to a free port (now ${port}), or DATABASE_URL=postgres://`);
    expect(r.stderr).not.toContain('undefined');
  });

  it.runIf(process.getuid?.() === 0)('as root, a data directory under a mode-700 folder says why and names PGDISPATCH_DATA_DIR', async () => {
    const closed = tempDir(0o700);
    // The default data directory, relative to a working directory other users cannot enter.
    const r = await cli(['serve'], { EMBEDDED_PG_PORT: '1' }, { cwd: closed });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('running as root, the embedded PostgreSQL runs as the OS user "postgres", which cannot reach the data directory');
    expect(r.stderr).toContain(`${closed} is mode 700`);
    expect(r.stderr).toContain('set PGDISPATCH_DATA_DIR to a directory every user can traverse');
    // Checked before initdb ran: nothing was initialised.
    expect(existsSync(path.join(closed, '.pgdispatch', 'data', 'PG_VERSION'))).toBe(false);
  });
});

describe('a tasks module that fails to load', () => {
  it('stops the process before the embedded PostgreSQL starts', async () => {
    const dir = tempDir();
    const r = await cli(['serve'], { PGDISPATCH_DATA_DIR: path.join(dir, 'data'), TASKS_MODULE: './no-such-tasks.mjs' }, { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot load tasks module "./no-such-tasks.mjs"');
    expect(r.stdout).not.toContain('starting embedded PostgreSQL');
    expect(existsSync(path.join(dir, 'data'))).toBe(false);
  });

  it('stops the process before it connects to DATABASE_URL or runs a migration', async () => {
    const adminUrl = inject('pgAdminUrl');
    const name = `pgdispatch_newcomer_${process.pid}`;
    const admin = createDb({ url: adminUrl, max: 1 });
    await admin.unsafe(`drop database if exists ${name}`);
    await admin.unsafe(`create database ${name}`);
    const u = new URL(adminUrl);
    u.pathname = `/${name}`;
    try {
      const dir = tempDir();
      const bad = path.join(dir, 'tasks.mjs');
      writeFileSync(bad, 'export default [{ name: "x" }];\n');
      const r = await cli(['serve'], { DATABASE_URL: u.toString(), TASKS_MODULE: bad });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('item 0 is not a task definition');
      const db = createDb({ url: u.toString(), max: 1 });
      const tables = await db<{ n: number }[]>`select count(*)::int as n from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema')`;
      await closeDb(db);
      expect(tables[0]!.n).toBe(0);
    } finally {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await closeDb(admin);
    }
  });
});

describe('pgdispatch token', () => {
  const secret = 'a-signing-secret-of-at-least-32-chars!';

  it('needs only WORKER_TOKEN_SECRET, even where the role would need API_KEYS and DATABASE_URL', async () => {
    const r = await cli(['token', '--queues', 'emails,reports', '--subject', 'laptop'], { DISPATCH_ROLE: 'api', WORKER_TOKEN_SECRET: secret });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { payload } = await jwtVerify(r.stdout.trim(), new TextEncoder().encode(secret));
    expect(payload.sub).toBe('laptop');
    expect(JSON.stringify(payload)).toContain('emails');
  });

  it('without the secret it names the variable and exits 78 (configuration)', async () => {
    const r = await cli(['token'], { DISPATCH_ROLE: 'api', API_KEYS: 'whatever-key:admin' });
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('WORKER_TOKEN_SECRET: is required to mint tokens');
    const short = await cli(['token'], { WORKER_TOKEN_SECRET: 'short' });
    expect(short.stderr).toContain('WORKER_TOKEN_SECRET: must be at least 32 characters');
  });
});

describe('the start banner of role api', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ max: 1 });
  });
  afterAll(async () => db?.drop());

  it('prints a try: curl line with the Authorization header, which works once PGDISPATCH_API_KEY is set, and never the key itself', async () => {
    const key = 'newcomer-key-0123456789';
    const proc = spawn(process.execPath, [CLI, 'serve'], {
      env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', DISPATCH_ROLE: 'api', DATABASE_URL: db.url, API_KEYS: `${key}:enqueue+read`, WORKER_KEYS: `${'w'.repeat(20)}:*` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no banner:\n${out}`)), 30_000);
        proc.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          const m = /^ {2}try: (curl .*)$/m.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        proc.once('exit', (code) => reject(new Error(`exited ${code}:\n${out}`)));
      });
      expect(line).toContain('-H "authorization: Bearer $PGDISPATCH_API_KEY"');
      expect(out).not.toContain(key);
      // Run the printed command's request as a shell would, with the variable set.
      const url = /-X POST (\S+)/.exec(line)![1]!;
      const headers = Object.fromEntries([...line.matchAll(/-H (['"])(.*?)\1/g)].map((m) => m[2]!.replace('$PGDISPATCH_API_KEY', key).split(': ') as [string, string]));
      const body = /-d '(.*)'$/.exec(line)![1]!;
      const res = await fetch(url, { method: 'POST', headers, body });
      expect(res.status).toBe(201);
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
  });
});
