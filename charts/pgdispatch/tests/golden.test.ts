/**
 * `worker.enabled=false` must render byte for byte what the chart rendered before the worker
 * feature existed, so turning workers on is opt-in and turning them off is provably a no-op.
 *
 * Determinism: the chart generates the API key and the worker JWT secret with `randAlphaNum` when
 * no value is given (on a live cluster `lookup` keeps them stable; `helm template` has no cluster),
 * and the pods' `checksum/config` hashes them. The golden renders therefore pin those secrets
 * (golden/default.values.yaml) or take every credential from existing Secrets
 * (golden/existing-secrets.values.yaml). A third test renders the bare defaults, masks only the
 * generated values and their checksums, and compares with the same golden file.
 *
 * Regenerate after an intended change: UPDATE_GOLDEN=1 npx vitest run charts/pgdispatch/tests/golden
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BASE_VALUES, chartDir, templateRaw } from './helm.js';

const goldenDir = join(chartDir, 'tests', 'golden');
const update = process.env.UPDATE_GOLDEN === '1';

async function renderText(...layers: object[]): Promise<string> {
  const result = await templateRaw(layers);
  if (result.code !== 0) throw new Error(result.stderr);
  return result.stdout;
}

function valuesOf(name: string): object {
  return parse(readFileSync(join(goldenDir, `${name}.values.yaml`), 'utf8')) as object;
}

function expectGolden(name: string, rendered: string): void {
  const file = join(goldenDir, `${name}.yaml`);
  if (update) writeFileSync(file, rendered);
  // Byte equality, not a YAML comparison: ordering, quoting and whitespace all count.
  expect(rendered === readFileSync(file, 'utf8'), `${file} differs from the render; run with UPDATE_GOLDEN=1 if intended`).toBe(true);
}

/** Worker settings that must have no effect at all while worker.enabled=false. */
const WORKER_SETTINGS_WHILE_OFF = {
  worker: {
    enabled: false,
    queues: ['emails'],
    replicaCount: 9,
    token: 'unused-worker-credential-123',
    concurrency: 99,
    autoscaling: { enabled: false, maxReplicas: 50 },
    keda: { enabled: true, minReplicaCount: 0, prometheus: { serverAddress: 'http://prom:9090' } },
    podDisruptionBudget: { enabled: true, minAvailable: 2, maxUnavailable: null },
    nodeSelector: { pool: 'workers' },
    image: { repository: 'registry.example.com/team/tasks', tag: '1' },
    tasksModule: '/app/tasks/index.mjs',
    command: ['node', 'w.js'],
    preStopSleepSeconds: 9,
    extraEnvFrom: [{ secretRef: { name: 'mail' } }],
    extraVolumes: [{ name: 'tasks', configMap: { name: 'tasks' } }],
    extraVolumeMounts: [{ name: 'tasks', mountPath: '/app/tasks' }],
  },
  metrics: { podMonitor: { enabled: true } },
};

describe('golden renders (worker.enabled=false)', () => {
  for (const name of ['default', 'existing-secrets']) {
    it(`${name}: matches the committed render byte for byte`, async () => {
      expectGolden(name, await renderText(valuesOf(name)));
    });

    it(`${name}: worker.enabled=false with every worker setting changed renders the same bytes`, async () => {
      const golden = readFileSync(join(goldenDir, `${name}.yaml`), 'utf8');
      expect((await renderText(valuesOf(name), WORKER_SETTINGS_WHILE_OFF)) === golden).toBe(true);
    });
  }

  it('the golden render has no trace of a worker', () => {
    const golden = readFileSync(join(goldenDir, 'default.yaml'), 'utf8');
    expect(golden).not.toMatch(/pgdispatch-worker|component: worker|WORKER_KEYS|PGDISPATCH_WORKER|name: WORKER_TOKEN$|API_URL/m);
  });

  it('the bare defaults differ from the golden render only in generated secrets and their checksums', async () => {
    const values = valuesOf('default') as { database: object };
    expect(values.database).toEqual(BASE_VALUES.database);
    const mask = (text: string) =>
      text
        .replace(/^( {2}(?:api-keys|worker-token-secret): )"[^"]*"$/gm, '$1"<generated>"')
        .replace(/(checksum\/config: )[a-f0-9]{64}/g, '$1<checksum>');
    const bare = await renderText(BASE_VALUES);
    const golden = readFileSync(join(goldenDir, 'default.yaml'), 'utf8');
    expect(bare).not.toBe(golden);
    expect(mask(bare)).toBe(mask(golden));
  });

  it('turning the worker on changes the api Deployment only by the worker credential it accepts', async () => {
    const off = await renderText(valuesOf('default'));
    const on = await renderText(valuesOf('default'), { worker: { enabled: true, token: 'golden-worker-credential-0123456789' } });
    const apiDeployment = (text: string) => text.split('\n---\n').find((doc) => doc.startsWith('# Source: pgdispatch/templates/deployment.yaml'))!;
    const added = apiDeployment(on)
      .split('\n')
      .filter((line) => !apiDeployment(off).split('\n').includes(line));
    expect(added.join('\n')).toMatch(/PGDISPATCH_WORKER_CREDENTIAL/);
    expect(added.every((l) => /PGDISPATCH_WORKER_CREDENTIAL|WORKER_KEYS|valueFrom|secretKeyRef|name: pgd-pgdispatch-worker|key: worker-token|value: "\$\(/.test(l))).toBe(true);
  });
});
