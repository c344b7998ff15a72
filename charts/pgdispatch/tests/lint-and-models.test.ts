import { describe, expect, it } from 'vitest';
import { BASE_VALUES, chartDir, helm, KUBE_VERSION, render, valuesArgs, type K8sObject } from './helm.js';
import { MATRIX } from './matrix.js';
import { expectValidObjects, MODELS } from './models.js';

describe('helm lint --strict', () => {
  for (const [name, layers] of Object.entries(MATRIX)) {
    it(`passes: ${name}`, async () => {
      const result = await helm(['lint', chartDir, '--strict', '--kube-version', KUBE_VERSION, ...valuesArgs(BASE_VALUES, ...layers)]);
      expect(result.stderr + result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(result.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
      expect(result.code).toBe(0);
    });
  }
});

describe(`every rendered object is valid for Kubernetes ${KUBE_VERSION}`, () => {
  for (const [name, layers] of Object.entries(MATRIX)) {
    it(`validates: ${name}`, async () => {
      expectValidObjects(await render(...layers));
    });
  }

  it('the validator catches a broken object (the check is real)', () => {
    const broken = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' }, spec: { ports: [{ port: 'http' }] } } as unknown as K8sObject;
    expect(() => MODELS['v1/Service']!(broken).validate()).toThrow(/port must be integer/);
    const badMount = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { selector: {}, template: { spec: { containers: [{ name: 'c', volumeMounts: [{ name: 't' }] }] } } } };
    expect(() => MODELS['apps/v1/Deployment']!(badMount as unknown as K8sObject).validate()).toThrow(/mountPath/);
  });
});
