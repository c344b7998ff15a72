/**
 * Offline validation of rendered objects: built-in kinds against the Kubernetes OpenAPI schema
 * (kubernetes-models), CRDs against the fields their controllers require, apiVersions against an
 * allowlist. Shared by the values matrix and the docs' values (docs.test.ts).
 */
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Job } from 'kubernetes-models/batch/v1';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { expect } from 'vitest';
import { get, type K8sObject } from './helm.js';

/** APIs the chart may render; anything else (a removed beta API, a typo) fails. */
export const ALLOWED_API_VERSIONS = [
  'v1', 'apps/v1', 'autoscaling/v2', 'policy/v1', 'batch/v1', 'networking.k8s.io/v1', 'keda.sh/v1alpha1', 'monitoring.coreos.com/v1',
];

interface Validatable {
  validate(): void;
}

/** Built-in kinds, validated offline against the Kubernetes OpenAPI schema by kubernetes-models. */
export const MODELS: Record<string, (obj: K8sObject) => Validatable> = {
  'apps/v1/Deployment': (o) => new Deployment(o as never),
  'autoscaling/v2/HorizontalPodAutoscaler': (o) => new HorizontalPodAutoscaler(o as never),
  'batch/v1/Job': (o) => new Job(o as never),
  'networking.k8s.io/v1/Ingress': (o) => new Ingress(o as never),
  'policy/v1/PodDisruptionBudget': (o) => new PodDisruptionBudget(o as never),
  'v1/ConfigMap': (o) => new ConfigMap(o as never),
  'v1/Secret': (o) => new Secret(o as never),
  'v1/Service': (o) => new Service(o as never),
  'v1/ServiceAccount': (o) => new ServiceAccount(o as never),
};

/** CRDs have no model here: their shape is asserted by hand against the CRD's required fields. */
const CRD_SHAPES: Record<string, (obj: K8sObject) => void> = {
  'keda.sh/v1alpha1/ScaledObject': (o) => {
    expect(get(o, 'spec.scaleTargetRef')).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment', name: expect.any(String) });
    expect(get(o, 'spec.minReplicaCount')).toEqual(expect.any(Number));
    expect(get(o, 'spec.maxReplicaCount')).toEqual(expect.any(Number));
    const triggers = get<Record<string, unknown>[]>(o, 'spec.triggers');
    expect(triggers.length).toBeGreaterThan(0);
    for (const t of triggers) {
      expect(t.type).toBe('prometheus');
      // KEDA trigger metadata is map[string]string: numbers must be rendered as strings.
      for (const value of Object.values(get<Record<string, unknown>>(t, 'metadata'))) expect(typeof value).toBe('string');
      expect(get<string>(t, 'metadata.serverAddress')).toMatch(/^https?:\/\//);
    }
  },
  'monitoring.coreos.com/v1/ServiceMonitor': (o) => {
    expect(get(o, 'spec.selector.matchLabels')).toEqual(expect.any(Object));
    for (const e of get<Record<string, unknown>[]>(o, 'spec.endpoints')) {
      expect(e).toMatchObject({ port: 'http', path: '/metrics' });
      expect(e.interval).toMatch(/^\d+(ms|s|m|h)$/);
    }
  },
  'monitoring.coreos.com/v1/PodMonitor': (o) => {
    expect(get(o, 'spec.selector.matchLabels')).toEqual(expect.any(Object));
    for (const e of get<Record<string, unknown>[]>(o, 'spec.podMetricsEndpoints')) expect(e).toMatchObject({ port: 'http', path: '/metrics' });
  },
};

/** Validates every object of a render; fails the test on the first invalid one. */
export function expectValidObjects(objects: K8sObject[]): void {
  expect(objects.length).toBeGreaterThan(0);
  const names = new Set<string>();
  for (const obj of objects) {
    const id = `${obj.apiVersion}/${obj.kind}`;
    expect(ALLOWED_API_VERSIONS, id).toContain(obj.apiVersion);
    expect(obj.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
    expect(names.has(`${obj.kind}/${obj.metadata.name}`), `duplicate ${obj.kind}/${obj.metadata.name}`).toBe(false);
    names.add(`${obj.kind}/${obj.metadata.name}`);
    const model = MODELS[id];
    const shape = CRD_SHAPES[id];
    if (model) expect(() => model(obj).validate(), `${id} ${obj.metadata.name}`).not.toThrow();
    else if (shape) shape(obj);
    else throw new Error(`no validation for ${id}: add a model or a CRD shape`);
  }
}
