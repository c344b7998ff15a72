/**
 * NOTES.txt is rendered only by install/upgrade, which need a cluster. The test renders it through
 * `helm template` instead: a copy of the chart wraps NOTES.txt in a named template and emits it
 * inside a ConfigMap.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_VALUES, chartDir, FULLNAME, NAMESPACE, get, parseManifests, templateRaw } from './helm.js';

let chartCopy: string;

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'pgdispatch-notes-'));
  chartCopy = join(dir, 'pgdispatch');
  cpSync(chartDir, chartCopy, { recursive: true, filter: (src) => !src.startsWith(join(chartDir, 'tests')) });
  const notes = readFileSync(join(chartCopy, 'templates', 'NOTES.txt'), 'utf8');
  rmSync(join(chartCopy, 'templates', 'NOTES.txt'));
  writeFileSync(join(chartCopy, 'templates', '_notes-under-test.tpl'), `{{- define "pgdispatch.test.notes" -}}\n${notes}{{- end -}}\n`);
  writeFileSync(
    join(chartCopy, 'templates', 'notes-under-test.yaml'),
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include "pgdispatch.test.notes" . | quote }}\n',
  );
});

afterAll(() => rmSync(join(chartCopy, '..'), { recursive: true, force: true }));

async function notes(...layers: object[]): Promise<string> {
  const result = await templateRaw([BASE_VALUES, ...layers], ['--show-only', 'templates/notes-under-test.yaml'], chartCopy);
  if (result.code !== 0) throw new Error(result.stderr);
  return get<string>(parseManifests(result.stdout)[0], 'data.notes');
}

describe('NOTES.txt', () => {
  it('tells how to reach the API and fetch the generated key', async () => {
    const text = await notes();
    expect(text).toContain(`kubectl -n ${NAMESPACE} port-forward svc/${FULLNAME} 8080:8080`);
    expect(text).toContain(`http://${FULLNAME}.${NAMESPACE}.svc:8080/v1`);
    expect(text).toContain(`get secret ${FULLNAME} -o jsonpath='{.data.api-keys}'`);
    expect(text).not.toContain('Ingress');
    expect(await notes({ ingress: { enabled: true, hostname: 'dispatch.example.com', tls: true } })).toContain('Through the Ingress: https://dispatch.example.com/v1');
  });

  it('without workers in role all, says the api pods execute and how to split the tiers', async () => {
    const text = await notes();
    expect(text).toContain('No worker tier (worker.enabled=false): the api pods run role all and execute queues *.');
    expect(text).toContain('--set worker.enabled=true, then --set dispatchRole=api');
  });

  it('warns when role api has no workers in the release', async () => {
    const text = await notes({ dispatchRole: 'api' });
    expect(text).toContain('WARNING: dispatchRole=api and worker.enabled=false — nothing in this release executes jobs.');
  });

  it('describes the worker tier, its scaling and the scale-to-zero caveat', async () => {
    const text = await notes({
      worker: { enabled: true, queues: ['emails', 'reports'], keda: { enabled: true, minReplicaCount: 0, prometheus: { serverAddress: 'http://prom:9090' } } },
    });
    expect(text).toContain(`Deployment ${FULLNAME}-worker (DISPATCH_ROLE=worker) runs queues: emails, reports`);
    expect(text).toContain('between 0 and 20 replicas');
    expect(text).toContain('NOTE: scale to zero is on.');
    expect(text).toContain('finish the rollout with --set dispatchRole=api');
  });

  it('names the existing Secret instead of a kubectl recipe', async () => {
    const text = await notes({ auth: { existingSecret: 'creds' } });
    expect(text).toContain('Secret creds, key api-keys (API_KEYS).');
    expect(text).not.toContain('jsonpath');
  });

  it('fails with validateValues like the manifests do', async () => {
    const result = await templateRaw([{}], ['--show-only', 'templates/notes-under-test.yaml'], chartCopy);
    expect(result.stderr).toContain('pgdispatch: invalid values:');
  });
});
