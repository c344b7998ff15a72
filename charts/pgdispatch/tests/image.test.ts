/**
 * No Docker engine runs here, so the image is never built in CI. The Dockerfile is linted offline
 * with dockerfile-utils and its contract with the chart is checked by reading it: base image,
 * stages, every workspace manifest copied for `npm ci`, non-root numeric user, port, entrypoint.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { chartDir, repoRoot } from './helm.js';

const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
const dockerignore = readFileSync(join(repoRoot, '.dockerignore'), 'utf8');
const rootPackage = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { workspaces: string[] };

/** Instructions with continuation lines joined and comments dropped. */
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));

/** The instructions of one build stage (`FROM … AS name` up to the next FROM). */
function stage(name: string): string[] {
  const start = instructions.findIndex((l) => new RegExp(`^FROM \\S+ AS ${name}$`).test(l));
  expect(start, `stage ${name}`).toBeGreaterThanOrEqual(0);
  const next = instructions.findIndex((l, i) => i > start && l.startsWith('FROM '));
  return instructions.slice(start, next === -1 ? undefined : next);
}

describe('Dockerfile', () => {
  it('has no problems according to dockerfile-utils', () => {
    expect(validate(dockerfile)).toEqual([]);
  });

  it('the lint is real: it reports a broken Dockerfile', () => {
    expect(validate('FROM node:24-bookworm-slim\nEXPOSE eighty\nCOPY\n').length).toBeGreaterThan(0);
  });

  it('builds on the Node 24 LTS slim image, pinned by digest, in three stages', () => {
    expect(instructions.find((l) => l.startsWith('ARG NODE_IMAGE='))).toMatch(/^ARG NODE_IMAGE=node:24-bookworm-slim@sha256:[a-f0-9]{64}$/);
    expect(instructions.filter((l) => l.startsWith('FROM ')).map((l) => l.split(' ').slice(1).join(' '))).toEqual([
      '${NODE_IMAGE} AS build',
      '${NODE_IMAGE} AS deps',
      '${NODE_IMAGE} AS runtime',
    ]);
  });

  it('copies every workspace manifest before npm ci, in the build and the deps stage', () => {
    for (const name of ['build', 'deps']) {
      const lines = stage(name);
      const install = lines.findIndex((l) => l.startsWith('RUN npm ci'));
      expect(install, name).toBeGreaterThan(0);
      for (const ws of rootPackage.workspaces) {
        const copy = lines.findIndex((l) => l === `COPY ${ws}/package.json ${ws}/`);
        expect(copy, `${name}: ${ws}/package.json`).toBeGreaterThan(0);
        expect(copy).toBeLessThan(install);
      }
      expect(lines.slice(0, install).some((l) => /^COPY .*package-lock\.json/.test(l))).toBe(true);
    }
  });

  it('builds with dev dependencies and ships production dependencies only', () => {
    expect(stage('build')).toContain('RUN npm run build');
    expect(stage('deps').find((l) => l.startsWith('RUN npm ci'))).toMatch(/^RUN npm ci --omit=dev /);
    const runtime = stage('runtime');
    expect(runtime).toContain('COPY --from=deps /app/ /app/');
    for (const pkg of ['packages/core', 'packages/engine', 'packages/client', 'packages/worker', 'packages/api', 'apps/server']) {
      expect(runtime).toContain(`COPY --from=build /src/${pkg}/dist/ ${pkg}/dist/`);
    }
    expect(runtime).toContain('COPY migrations/ migrations/');
    expect(runtime.some((l) => l.includes('bench/') && !l.includes('package.json'))).toBe(false);
    expect(runtime.some((l) => /^RUN /.test(l))).toBe(false);
  });

  it('has no HEALTHCHECK (Kubernetes probes cover it; it would spawn a Node process every interval)', () => {
    expect(instructions.filter((l) => /^HEALTHCHECK\b/i.test(l))).toEqual([]);
  });

  it('the production install takes no build arguments that could bring back optional packages', () => {
    expect(stage('deps').filter((l) => l.startsWith('ARG '))).toEqual([]);
    expect(stage('deps').find((l) => l.startsWith('RUN npm ci'))).toMatch(/--omit=optional/);
  });

  it('runs as the numeric non-root user the chart expects, with a writable /tmp only', () => {
    const runtime = stage('runtime');
    const values = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as { securityContext: { runAsUser: number; runAsGroup: number } };
    expect(runtime).toContain(`USER ${values.securityContext.runAsUser}:${values.securityContext.runAsGroup}`);
    expect(runtime.findIndex((l) => l.startsWith('USER '))).toBeGreaterThan(runtime.findLastIndex((l) => l.startsWith('COPY ')));
    const env = runtime.find((l) => l.startsWith('ENV '))!;
    expect(env).toMatch(/HOME=\/tmp/);
    expect(env).toMatch(/NODE_ENV=production/);
  });

  it('exposes the chart port and starts the CLI with serve', () => {
    const runtime = stage('runtime');
    const values = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as { config: { port: number } };
    expect(runtime).toContain(`EXPOSE ${values.config.port}`);
    expect(runtime).toContain('ENTRYPOINT ["node", "/app/apps/server/dist/cli.js"]');
    expect(runtime).toContain('CMD ["serve"]');
    // The chart passes subcommands as args, so they replace CMD and keep the ENTRYPOINT.
    const job = readFileSync(join(chartDir, 'templates', 'migrate-job.yaml'), 'utf8');
    expect(job).toContain('args: ["migrate"]');
  });
});

describe('.dockerignore', () => {
  const patterns = dockerignore.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));

  it('keeps build output, dependencies, git and local state out of the context', () => {
    for (const p of ['.git', '**/node_modules', '**/dist', '.tools', '.pgdispatch', '.env']) expect(patterns).toContain(p);
  });

  it('keeps what the build needs: manifests, sources, migrations and bench/package.json', () => {
    for (const needed of ['package.json', 'package-lock.json', '.npmrc', 'packages', 'apps', 'migrations', 'turbo.json', 'tsconfig.base.json']) {
      expect(patterns, needed).not.toContain(needed);
    }
    expect(patterns.indexOf('!bench/package.json')).toBeGreaterThan(patterns.indexOf('bench/*'));
  });
});
