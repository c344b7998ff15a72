/**
 * docs/operations.md's "Your tasks in Kubernetes" walk-through, rendered as a reader would use it:
 * every values block marked `<!-- docs-test: values NAME -->` is rendered with the real helm on
 * its own (no test defaults), validated offline with kubernetes-models, and checked for what the
 * text promises. The tasks module marked `<!-- docs-test: tasks-module -->` is written under the
 * repository root (as the image keeps it under /app) and loaded by the built worker loader in a
 * separate Node process, resolving `@pgdispatch/worker` and `zod` the way the image does.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { FULLNAME, effectiveEnv, find, get, parseManifests, podSpec, repoRoot, templateRaw, type K8sObject } from './helm.js';
import { expectValidObjects } from './models.js';

const doc = readFileSync(join(repoRoot, 'docs', 'operations.md'), 'utf8');
const WORKER = `${FULLNAME}-worker`;

/** The fenced block right after each `<!-- docs-test: KIND NAME -->` marker. */
function blocks(kind: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of doc.matchAll(/<!-- docs-test: ([a-z-]+)(?: ([a-z-]+))? -->\n```[a-z]*\n([\s\S]*?)\n```/g)) {
    if (m[1] === kind) found.set(m[2] ?? kind, m[3]!);
  }
  return found;
}

async function renderDoc(name: string): Promise<K8sObject[]> {
  const text = blocks('values').get(name);
  if (!text) throw new Error(`docs/operations.md has no values block "${name}"`);
  const result = await templateRaw([parse(text) as object]);
  if (result.code !== 0) throw new Error(`the documented values "${name}" do not render:\n${result.stderr}`);
  const objects = parseManifests(result.stdout);
  expectValidObjects(objects);
  return objects;
}

const workerContainer = (objects: K8sObject[]) => podSpec(find(objects, 'Deployment', WORKER)).containers[0]!;

describe('docs/operations.md: your tasks in Kubernetes', () => {
  it('has the walk-through blocks this test renders', () => {
    expect([...blocks('values').keys()].sort()).toEqual(['configmap-module', 'ingress', 'team-image']);
    expect(blocks('tasks-module').size).toBe(1);
  });

  it('team image: the workers run it with its tasks module, the api stays on the stock image', async () => {
    const objects = await renderDoc('team-image');
    const c = workerContainer(objects);
    expect(c.image).toBe('registry.example.com/team/pgdispatch-tasks:2026.12.1');
    expect(effectiveEnv(objects, c).get('TASKS_MODULE')).toBe('/app/tasks/index.mjs');
    expect(podSpec(find(objects, 'Deployment', FULLNAME)).containers[0]!.image).toMatch(/^ghcr\.io\/pgdispatch\/pgdispatch:/);
    expect(effectiveEnv(objects, podSpec(find(objects, 'Deployment', FULLNAME)).containers[0]!).get('DISPATCH_ROLE')).toBe('api');
    expect(find(objects, 'HorizontalPodAutoscaler', WORKER).kind).toBe('HorizontalPodAutoscaler');
    // The Dockerfile snippet next to it sets the same module path.
    expect(doc).toMatch(/FROM ghcr\.io\/pgdispatch\/pgdispatch:\S+\nCOPY tasks\/ \/app\/tasks\/\nENV TASKS_MODULE=\/app\/tasks\/index\.mjs/);
  });

  it('ConfigMap module: mounted read-only under /app/tasks on the workers, env from a Secret', async () => {
    const objects = await renderDoc('configmap-module');
    const spec = podSpec(find(objects, 'Deployment', WORKER));
    const c = spec.containers[0]!;
    expect(effectiveEnv(objects, c).get('TASKS_MODULE')).toBe('/app/tasks/index.mjs');
    expect(get(spec, 'volumes')).toContainEqual({ name: 'tasks', configMap: { name: 'pgdispatch-tasks' } });
    expect(c.volumeMounts).toContainEqual({ name: 'tasks', mountPath: '/app/tasks', readOnly: true });
    expect(c.envFrom).toContainEqual({ secretRef: { name: 'mail-credentials' } });
    expect(get(c, 'securityContext.readOnlyRootFilesystem')).toBe(true);
    // The kubectl line creates the ConfigMap the values mount, under the file name TASKS_MODULE names.
    expect(doc).toContain('kubectl -n jobs create configmap pgdispatch-tasks --from-file=index.mjs=tasks/index.mjs');
  });

  it('Ingress: TLS for the documented host, routed to the api Service', async () => {
    const objects = await renderDoc('ingress');
    const ing = find(objects, 'Ingress', FULLNAME);
    expect(get(ing, 'spec.tls')).toEqual([{ hosts: ['dispatch.example.com'], secretName: 'dispatch.example.com-tls' }]);
    expect(get(ing, 'spec.rules.0.http.paths.0.backend')).toEqual({ service: { name: FULLNAME, port: { name: 'http' } } });
  });

  describe('the documented tasks module', () => {
    const dir = join(repoRoot, '.tmp', `docs-tasks-${process.pid}`);
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('loads with the built worker loader from a folder inside the install, beside the built-ins', async () => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'index.mjs'), blocks('tasks-module').get('tasks-module')!);
      const script = `
        import { loadTaskRegistry } from '@pgdispatch/worker/load-tasks';
        const registry = await loadTaskRegistry({ tasksModule: ${JSON.stringify(join(dir, 'index.mjs'))} });
        const task = registry.get('send-welcome');
        const ok = task.payload.safeParse({ email: 'a@example.com' }).success;
        const bad = task.payload.safeParse({ email: 'nope' }).success;
        process.stdout.write(JSON.stringify({ names: registry.names(), ok, bad }));`;
      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot }, (err, stdout, stderr) => (err ? reject(new Error(stderr || String(err))) : resolve(stdout))),
      );
      const result = JSON.parse(out) as { names: string[]; ok: boolean; bad: boolean };
      expect(result.names).toContain('send-welcome');
      expect(result.names).toContain('noop');
      expect(result).toMatchObject({ ok: true, bad: false });
    });
  });
});
