/**
 * Runs the real Helm 3 binary (extracted by scripts/install-helm.mjs into .tools/helm/helm) against
 * the chart, with HELM_*_HOME pointed at a throwaway folder so no user config leaks in, and parses
 * what it renders into plain objects.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const chartDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = resolve(chartDir, '..', '..');
export const helmBin = join(repoRoot, '.tools', 'helm', 'helm');
export const KUBE_VERSION = '1.30.0';
export const RELEASE = 'pgd';
export const NAMESPACE = 'jobs';
/** `<release>-<chart>`, the fullname under the default naming. */
export const FULLNAME = 'pgd-pgdispatch';

/** The smallest values that render: an external database is required under Kubernetes. */
export const BASE_VALUES = { database: { url: 'postgres://pgdispatch:s3cret@db.example:5432/pgdispatch' } };

/** Pins every chart-generated secret so that renders are reproducible (`helm template` has no `lookup`). */
export const PINNED_SECRETS = {
  auth: { apiKeys: 'golden-api-key-0123456789:enqueue+read+admin', workerTokenSecret: 'golden-worker-token-secret-0123456789abcdef' },
  worker: { token: 'golden-worker-credential-0123456789' },
};

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // Rendered manifests are untyped until validated; tests narrow through the accessors below.
  [key: string]: unknown;
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

let scratch: string | undefined;

/** One temp folder per test file: Helm's homes and the values files; removed at exit. */
function scratchDir(): string {
  if (!scratch) {
    const dir = mkdtempSync(join(tmpdir(), 'pgdispatch-helm-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    scratch = dir;
  }
  return scratch;
}

let valuesFiles = 0;

function helmEnv(): NodeJS.ProcessEnv {
  const helmHome = scratchDir();
  return {
    PATH: process.env.PATH,
    HOME: helmHome,
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_DATA_HOME: join(helmHome, 'data'),
    // No cluster: `lookup` returns nothing and nothing is ever contacted.
    KUBECONFIG: join(helmHome, 'no-kubeconfig'),
  };
}

/** Runs helm with `args`; never throws on a non-zero exit (negative tests read stderr). */
export function helm(args: string[]): Promise<HelmResult> {
  if (!existsSync(helmBin)) throw new Error(`helm not found at ${helmBin}: run \`node scripts/install-helm.mjs\` (npm test does it in pretest)`);
  return new Promise((resolvePromise) => {
    execFile(helmBin, args, { env: helmEnv(), maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** Writes each values object to a temp file and returns `-f` arguments, later files winning. */
export function valuesArgs(...layers: object[]): string[] {
  const dir = scratchDir();
  return layers.flatMap((layer) => {
    const file = join(dir, `values-${++valuesFiles}.json`);
    writeFileSync(file, JSON.stringify(layer)); // JSON is YAML
    return ['-f', file];
  });
}

/** `helm template` with the fixed release name, namespace and Kubernetes version. */
export function templateRaw(layers: object[], extra: string[] = [], chart = chartDir): Promise<HelmResult> {
  return helm(['template', RELEASE, chart, '--namespace', NAMESPACE, '--kube-version', KUBE_VERSION, ...valuesArgs(...layers), ...extra]);
}

/** Renders BASE_VALUES + `overrides` and parses every document; fails the test on a helm error. */
export async function render(...overrides: object[]): Promise<K8sObject[]> {
  const result = await templateRaw([BASE_VALUES, ...overrides]);
  if (result.code !== 0) throw new Error(`helm template failed:\n${result.stderr}`);
  return parseManifests(result.stdout);
}

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`invalid YAML rendered: ${doc.errors[0]!.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

/** Renders and expects failure; returns helm's stderr. */
export async function renderError(...overrides: object[]): Promise<string> {
  const result = await templateRaw([BASE_VALUES, ...overrides]);
  if (result.code === 0) throw new Error('expected helm template to fail, but it rendered');
  return result.stderr;
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind}/${name} in [${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}]`);
  return found;
}

export function kinds(objects: K8sObject[]): string[] {
  return objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
}

/** Reads a nested field, e.g. `get(d, 'spec.template.spec')`. */
export function get<T = unknown>(obj: unknown, path: string): T {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined as T;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur as T;
}

export interface Container {
  name: string;
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  envFrom?: { configMapRef?: { name: string } }[];
  securityContext?: Record<string, unknown>;
  [key: string]: unknown;
}

export function podSpec(workload: K8sObject): Record<string, unknown> & { containers: Container[] } {
  return get(workload, 'spec.template.spec');
}

export function podLabels(workload: K8sObject): Record<string, string> {
  return get(workload, 'spec.template.metadata.labels');
}

/** Every environment variable a container sees: inline env plus ConfigMaps it imports. */
export function effectiveEnv(objects: K8sObject[], container: Container): Map<string, string | { secret: string; key: string }> {
  const env = new Map<string, string | { secret: string; key: string }>();
  for (const source of container.envFrom ?? []) {
    if (!source.configMapRef) continue;
    const cm = find(objects, 'ConfigMap', source.configMapRef.name);
    for (const [k, v] of Object.entries(get<Record<string, string>>(cm, 'data') ?? {})) env.set(k, v);
  }
  for (const e of container.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    env.set(e.name, ref ? { secret: ref.name, key: ref.key } : (e.value ?? ''));
  }
  return env;
}

/** Whether a `matchLabels` selector selects a pod with `labels`. */
export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
}
