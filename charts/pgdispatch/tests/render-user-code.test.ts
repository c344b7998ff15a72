/**
 * The chart runs a team's own code: worker image, tasks module, extra env sources, volumes and
 * mounts on both tiers, an optional Ingress, startup probe and preStop hook, and a termination
 * budget that always covers the server's SIGTERM drain.
 */
import { describe, expect, it } from 'vitest';
import { BASE_VALUES, FULLNAME, effectiveEnv, find, get, helm, parseManifests, podSpec, render, renderError, valuesArgs, chartDir, RELEASE, NAMESPACE, type K8sObject } from './helm.js';
import { expectValidObjects } from './models.js';

const WORKER = `${FULLNAME}-worker`;

function container(objects: K8sObject[], deployment: string) {
  return podSpec(find(objects, 'Deployment', deployment)).containers[0]!;
}

describe('worker image and command', () => {
  it('defaults to the api image; worker.image replaces it for the workers only', async () => {
    const plain = await render({ image: { tag: '9.9.9' }, worker: { enabled: true } });
    expect(container(plain, WORKER).image).toBe('ghcr.io/pgdispatch/pgdispatch:9.9.9');
    expect(container(plain, WORKER).args).toEqual(['serve']);
    expect(container(plain, WORKER).command).toBeUndefined();

    const team = await render({ worker: { enabled: true, image: { repository: 'registry.example.com/team/tasks', tag: '2026.12.1', pullPolicy: 'Always' } } });
    expect(container(team, WORKER)).toMatchObject({ image: 'registry.example.com/team/tasks:2026.12.1', imagePullPolicy: 'Always' });
    expect(container(team, FULLNAME)).toMatchObject({ image: 'ghcr.io/pgdispatch/pgdispatch:0.1.0', imagePullPolicy: 'IfNotPresent' });
    const job = find(team, 'Job', `${FULLNAME}-migrate`);
    expect(get<{ image: string }[]>(job, 'spec.template.spec.containers')[0]!.image).toBe('ghcr.io/pgdispatch/pgdispatch:0.1.0');

    const pinned = await render({ worker: { enabled: true, image: { repository: 'r/t', tag: 'ignored', digest: `sha256:${'c'.repeat(64)}` } } });
    expect(container(pinned, WORKER).image).toBe(`r/t@sha256:${'c'.repeat(64)}`);
    const sameRepoOtherTag = await render({ worker: { enabled: true, image: { tag: 'tasks-1' } } });
    expect(container(sameRepoOtherTag, WORKER).image).toBe('ghcr.io/pgdispatch/pgdispatch:tasks-1');
  });

  it('an own Node image gets its command and args', async () => {
    const objects = await render({ worker: { enabled: true, image: { repository: 'node', tag: '24' }, command: ['node', '/srv/worker.js'], args: [] } });
    const c = container(objects, WORKER);
    expect(c.command).toEqual(['node', '/srv/worker.js']);
    expect(c.args).toBeUndefined();
  });

  it('a worker repository without a tag or digest is refused', async () => {
    expect(await renderError({ worker: { enabled: true, image: { repository: 'registry.example.com/team/tasks' } } })).toContain(
      'worker.image.repository is set: set worker.image.tag or worker.image.digest too',
    );
  });
});

describe('tasks module, env sources, volumes', () => {
  it('worker.tasksModule sets the workers\' TASKS_MODULE; config.tasksModule the api\'s and the workers\' default', async () => {
    const both = await render({ config: { tasksModule: '/app/tasks/shared.mjs' }, worker: { enabled: true } });
    expect(effectiveEnv(both, container(both, FULLNAME)).get('TASKS_MODULE')).toBe('/app/tasks/shared.mjs');
    expect(effectiveEnv(both, container(both, WORKER)).get('TASKS_MODULE')).toBe('/app/tasks/shared.mjs');
    const split = await render({ worker: { enabled: true, tasksModule: '/app/tasks/index.mjs' } });
    expect(effectiveEnv(split, container(split, FULLNAME)).has('TASKS_MODULE')).toBe(false);
    expect(effectiveEnv(split, container(split, WORKER)).get('TASKS_MODULE')).toBe('/app/tasks/index.mjs');
  });

  it('a changed worker tasks module rolls the worker pods (checksum), not the api pods', async () => {
    const a = await render({ worker: { enabled: true, token: 'pinned-worker-credential-0123456789' }, auth: { apiKeys: 'k0123456789:admin', workerTokenSecret: 'x'.repeat(40) } });
    const b = await render({ worker: { enabled: true, token: 'pinned-worker-credential-0123456789', tasksModule: '/app/tasks/v2.mjs' }, auth: { apiKeys: 'k0123456789:admin', workerTokenSecret: 'x'.repeat(40) } });
    const sum = (o: K8sObject[], d: string) => get<string>(find(o, 'Deployment', d), 'spec.template.metadata.annotations.checksum/config');
    expect(sum(a, WORKER)).not.toBe(sum(b, WORKER));
    expect(sum(a, FULLNAME)).toBe(sum(b, FULLNAME));
  });

  for (const tier of ['api', 'worker'] as const) {
    it(`${tier}: extraEnvFrom, extraVolumes and extraVolumeMounts come after the chart's own`, async () => {
      const extra = {
        extraEnvFrom: [{ secretRef: { name: 'mail' } }],
        extraVolumes: [{ name: 'tasks', configMap: { name: 'pgdispatch-tasks' } }],
        extraVolumeMounts: [{ name: 'tasks', mountPath: '/app/tasks', readOnly: true }],
      };
      const objects = await render(tier === 'api' ? { ...extra, worker: { enabled: true } } : { worker: { enabled: true, ...extra } });
      const name = tier === 'api' ? FULLNAME : WORKER;
      const spec = podSpec(find(objects, 'Deployment', name));
      const c = spec.containers[0]!;
      expect(c.envFrom).toEqual([{ configMapRef: { name } }, { secretRef: { name: 'mail' } }]);
      expect(c.volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }, { name: 'tasks', mountPath: '/app/tasks', readOnly: true }]);
      expect(spec.volumes).toEqual([{ name: 'tmp', emptyDir: { sizeLimit: '256Mi' } }, { name: 'tasks', configMap: { name: 'pgdispatch-tasks' } }]);
      // The other tier is untouched.
      const other = podSpec(find(objects, 'Deployment', tier === 'api' ? WORKER : FULLNAME));
      expect(other.volumes).toEqual([{ name: 'tmp', emptyDir: { sizeLimit: '256Mi' } }]);
      expect(other.containers[0]!.envFrom).toHaveLength(1);
    });
  }

  it('the schema refuses a volume that shadows the chart\'s /tmp', async () => {
    expect(await renderError({ extraVolumes: [{ name: 'tmp', emptyDir: {} }] })).toMatch(/extraVolumes\.0\.name/);
    expect(await renderError({ worker: { extraVolumeMounts: [{ name: 'x', mountPath: '/tmp' }] } })).toMatch(/worker\.extraVolumeMounts\.0\.mountPath/);
    expect(await renderError({ extraEnvFrom: [{ configMap: { name: 'x' } }] })).toMatch(/Additional property configMap is not allowed/);
  });
});

describe('worker autoscaling is part of worker.enabled', () => {
  it('worker.enabled=true renders the worker HPA on CPU, with replicas left to it', async () => {
    const objects = await render({ worker: { enabled: true } });
    const hpa = find(objects, 'HorizontalPodAutoscaler', WORKER);
    expect(get(hpa, 'spec.scaleTargetRef.name')).toBe(WORKER);
    expect(get(hpa, 'spec.metrics')).toEqual([{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }]);
    expect(get(find(objects, 'Deployment', WORKER), 'spec.replicas')).toBeUndefined();
  });

  it('worker.autoscaling.enabled=false falls back to worker.replicaCount; KEDA replaces the HPA without a second switch', async () => {
    const fixed = await render({ worker: { enabled: true, autoscaling: { enabled: false }, replicaCount: 4 } });
    expect(fixed.some((o) => o.kind === 'HorizontalPodAutoscaler')).toBe(false);
    expect(get(find(fixed, 'Deployment', WORKER), 'spec.replicas')).toBe(4);
    const keda = await render({ worker: { enabled: true, keda: { enabled: true, prometheus: { serverAddress: 'http://prom:9090' } } } });
    expect(keda.some((o) => o.kind === 'HorizontalPodAutoscaler')).toBe(false);
    expect(find(keda, 'ScaledObject', WORKER)).toMatchObject({ kind: 'ScaledObject' });
  });

  it('a CPU HPA without a CPU request is refused (utilization is relative to the request)', async () => {
    expect(await renderError({ worker: { enabled: true, resources: { requests: { cpu: null } } } })).toContain('worker.autoscaling scales on CPU utilization: set worker.resources.requests.cpu');
    expect(await renderError({ autoscaling: { enabled: true }, resources: { requests: { cpu: null } } })).toContain('autoscaling scales on CPU utilization: set resources.requests.cpu');
  });
});

describe('startup probe, preStop and the termination budget', () => {
  it('both tiers get a startup probe on /healthz; liveness never checks the database', async () => {
    const objects = await render({ worker: { enabled: true } });
    for (const name of [FULLNAME, WORKER]) {
      const c = container(objects, name);
      expect(c.startupProbe).toEqual({ httpGet: { path: '/healthz', port: 'http' }, initialDelaySeconds: 0, periodSeconds: 2, timeoutSeconds: 3, failureThreshold: 60 });
      expect(get(c, 'livenessProbe.httpGet.path')).toBe('/healthz');
      expect(get(c, 'readinessProbe.httpGet.path')).toBe('/readyz');
    }
  });

  it('the api pauses in preStop (Kubernetes sleep action on 1.30+); workers have no hook by default', async () => {
    const objects = await render({ worker: { enabled: true } });
    expect(container(objects, FULLNAME).lifecycle).toEqual({ preStop: { sleep: { seconds: 5 } } });
    expect(container(objects, WORKER).lifecycle).toBeUndefined();
    const withWorkerHook = await render({ worker: { enabled: true, preStopSleepSeconds: 2 } });
    expect(container(withWorkerHook, WORKER).lifecycle).toEqual({ preStop: { sleep: { seconds: 2 } } });
    const none = await render({ preStopSleepSeconds: 0 });
    expect(container(none, FULLNAME).lifecycle).toBeUndefined();
  });

  it('before Kubernetes 1.30 the pause runs the image\'s sleep, and the render is still valid', async () => {
    const result = await helm(['template', RELEASE, chartDir, '--namespace', NAMESPACE, '--kube-version', '1.29.0', ...valuesArgs(BASE_VALUES, { worker: { enabled: true, preStopSleepSeconds: 1 } })]);
    expect(result.stderr).toBe('');
    const objects = parseManifests(result.stdout);
    expect(container(objects, FULLNAME).lifecycle).toEqual({ preStop: { exec: { command: ['sleep', '5'] } } });
    expect(container(objects, WORKER).lifecycle).toEqual({ preStop: { exec: { command: ['sleep', '1'] } } });
    expectValidObjects(objects);
  });

  it('the grace period must cover preStop + SHUTDOWN_GRACE_MS + 5 s, on each tier', async () => {
    // Defaults: 5 + 25 + 5 = 35 ≤ 40 (api), 0 + 25 + 5 = 30 ≤ 40 (workers).
    const ok = await render({ worker: { enabled: true } });
    expect(podSpec(find(ok, 'Deployment', FULLNAME)).terminationGracePeriodSeconds).toBe(40);
    expect(effectiveEnv(ok, container(ok, WORKER)).get('SHUTDOWN_GRACE_MS')).toBe('25000');
    // Exactly at the budget renders; one second under is refused.
    await render({ preStopSleepSeconds: 10, terminationGracePeriodSeconds: 40 });
    const stderr = await renderError({ preStopSleepSeconds: 11, terminationGracePeriodSeconds: 40, worker: { enabled: true, preStopSleepSeconds: 2, terminationGracePeriodSeconds: 31 } });
    expect(stderr).toContain('terminationGracePeriodSeconds (40) must be at least preStopSleepSeconds (11 s) + config.shutdownGraceMs (25000 ms) + 5 s = 41 s');
    expect(stderr).toContain('worker.terminationGracePeriodSeconds (31) must be at least worker.preStopSleepSeconds (2 s) + config.shutdownGraceMs (25000 ms) + 5 s = 32 s');
    const longJobs = await renderError({ config: { shutdownGraceMs: 120_000 } });
    expect(longJobs).toContain('= 130 s');
  });
});

describe('Ingress (bitnami conventions)', () => {
  it('is off by default', async () => {
    expect((await render()).some((o) => o.kind === 'Ingress')).toBe(false);
  });

  it('routes the main host, extra hosts and raw rules to the api Service port', async () => {
    const objects = await render({
      ingress: {
        enabled: true,
        ingressClassName: 'nginx',
        hostname: 'dispatch.example.com',
        tls: true,
        annotations: { 'cert-manager.io/cluster-issuer': 'letsencrypt' },
        extraHosts: [{ name: 'jobs.example.com', path: '/v1' }],
        extraTls: [{ hosts: ['jobs.example.com'], secretName: 'jobs-tls' }],
      },
    });
    const ing = find(objects, 'Ingress', FULLNAME);
    expect(ing.metadata.annotations).toEqual({ 'cert-manager.io/cluster-issuer': 'letsencrypt' });
    expect(get(ing, 'spec.ingressClassName')).toBe('nginx');
    const backend = { service: { name: FULLNAME, port: { name: 'http' } } };
    expect(get(ing, 'spec.rules')).toEqual([
      { host: 'dispatch.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend }] } },
      { host: 'jobs.example.com', http: { paths: [{ path: '/v1', pathType: 'Prefix', backend }] } },
    ]);
    expect(get(ing, 'spec.tls')).toEqual([
      { hosts: ['dispatch.example.com'], secretName: 'dispatch.example.com-tls' },
      { hosts: ['jobs.example.com'], secretName: 'jobs-tls' },
    ]);
    // The named port is the Service's.
    expect(get<{ name: string }[]>(find(objects, 'Service', FULLNAME), 'spec.ports').map((p) => p.name)).toContain('http');
  });

  it('refuses a host name that is not one', async () => {
    expect(await renderError({ ingress: { enabled: true, hostname: 'https://dispatch.example.com' } })).toMatch(/ingress\.hostname: Does not match pattern/);
  });
});
