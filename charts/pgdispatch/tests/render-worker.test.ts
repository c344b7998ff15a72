import { describe, expect, it } from 'vitest';
import { FULLNAME, NAMESPACE, effectiveEnv, find, get, kinds, podLabels, podSpec, render, selects, type K8sObject } from './helm.js';

const WORKER = `${FULLNAME}-worker`;
const ON = { worker: { enabled: true } };

function workerEnv(objects: K8sObject[]) {
  return effectiveEnv(objects, podSpec(find(objects, 'Deployment', WORKER)).containers[0]!);
}

describe('worker tier', () => {
  it('worker.enabled renders <fullname>-worker with its own name label', async () => {
    const objects = await render(ON);
    const worker = find(objects, 'Deployment', WORKER);
    expect(podLabels(worker)).toMatchObject({ 'app.kubernetes.io/name': 'pgdispatch-worker', 'app.kubernetes.io/component': 'worker' });
    // The worker HPA comes with worker.enabled and owns the replica count.
    expect(get(worker, 'spec.replicas')).toBeUndefined();
    expect(kinds(objects).filter((k) => k.endsWith(`/${WORKER}`))).toEqual(
      ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Secret'].map((k) => `${k}/${WORKER}`),
    );
  });

  it('each Deployment selects its own pods and never the other tier', async () => {
    const objects = await render(ON);
    const api = find(objects, 'Deployment', FULLNAME);
    const worker = find(objects, 'Deployment', WORKER);
    const apiSelector = get<Record<string, string>>(api, 'spec.selector.matchLabels');
    const workerSelector = get<Record<string, string>>(worker, 'spec.selector.matchLabels');
    expect(selects(apiSelector, podLabels(api))).toBe(true);
    expect(selects(workerSelector, podLabels(worker))).toBe(true);
    expect(selects(apiSelector, podLabels(worker))).toBe(false);
    expect(selects(workerSelector, podLabels(api))).toBe(false);
    const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
    for (const pdb of pdbs) {
      const own = pdb.metadata.name === WORKER ? worker : api;
      const other = own === worker ? api : worker;
      expect(selects(get(pdb, 'spec.selector.matchLabels'), podLabels(own))).toBe(true);
      expect(selects(get(pdb, 'spec.selector.matchLabels'), podLabels(other))).toBe(false);
    }
  });

  it('worker pods reach the api Service with a credential and never see DATABASE_*', async () => {
    const objects = await render(ON);
    const env = workerEnv(objects);
    expect(env.get('DISPATCH_ROLE')).toBe('worker');
    expect(env.get('API_URL')).toBe(`http://${FULLNAME}:8080`);
    expect(env.get('WORKER_TOKEN')).toEqual({ secret: WORKER, key: 'worker-token' });
    expect(env.get('LISTEN_QUEUES')).toBe('*');
    expect([...env.keys()].filter((k) => k.startsWith('DATABASE_'))).toEqual([]);
    // Nor any Secret of the api tier: the worker only references its own credential.
    const refs = (podSpec(find(objects, 'Deployment', WORKER)).containers[0]!.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef.name] : []));
    expect(refs).toEqual([WORKER]);
    expect(find(objects, 'Service', FULLNAME).metadata.name).toBe(new URL(String(env.get('API_URL'))).hostname);
  });

  it('the api accepts the worker credential for the worker queues only', async () => {
    const objects = await render({ worker: { enabled: true, queues: ['emails', 'hooks.v2'] } });
    expect(workerEnv(objects).get('LISTEN_QUEUES')).toBe('emails,hooks.v2');
    const apiContainer = podSpec(find(objects, 'Deployment', FULLNAME)).containers[0]!;
    const env = effectiveEnv(objects, apiContainer);
    expect(env.get('PGDISPATCH_WORKER_CREDENTIAL')).toEqual({ secret: WORKER, key: 'worker-token' });
    // Kubernetes expands $(VAR) from a variable defined earlier in the same list.
    expect(env.get('WORKER_KEYS')).toBe('$(PGDISPATCH_WORKER_CREDENTIAL):emails+hooks.v2');
    const names = (apiContainer.env ?? []).map((e) => e.name);
    expect(names.indexOf('PGDISPATCH_WORKER_CREDENTIAL')).toBeLessThan(names.indexOf('WORKER_KEYS'));
  });

  it('the generated worker credential is long enough for WORKER_KEYS; worker.existingSecret replaces it', async () => {
    const generated = find(await render(ON), 'Secret', WORKER);
    expect(Buffer.from(get<string>(generated, 'data.worker-token'), 'base64').toString()).toMatch(/^[A-Za-z0-9]{48}$/);

    const objects = await render({ worker: { enabled: true, existingSecret: 'byo', existingSecretKey: 'token' } });
    expect(objects.some((o) => o.kind === 'Secret' && o.metadata.name === WORKER)).toBe(false);
    expect(workerEnv(objects).get('WORKER_TOKEN')).toEqual({ secret: 'byo', key: 'token' });
    expect(effectiveEnv(objects, podSpec(find(objects, 'Deployment', FULLNAME)).containers[0]!).get('PGDISPATCH_WORKER_CREDENTIAL')).toEqual({ secret: 'byo', key: 'token' });
  });

  it('the worker has its own resources, scheduling and grace', async () => {
    const objects = await render({
      worker: {
        enabled: true,
        concurrency: 64,
        terminationGracePeriodSeconds: 90,
        resources: { requests: { cpu: '2' } },
        nodeSelector: { pool: 'workers' },
        tolerations: [{ key: 'workers', operator: 'Exists', effect: 'NoSchedule' }],
        topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway' }],
        priorityClassName: 'batch',
      },
    });
    const spec = podSpec(find(objects, 'Deployment', WORKER));
    expect(spec).toMatchObject({ nodeSelector: { pool: 'workers' }, priorityClassName: 'batch', terminationGracePeriodSeconds: 90 });
    expect(spec.tolerations).toHaveLength(1);
    expect(spec.topologySpreadConstraints).toHaveLength(1);
    // Helm merges maps: the override keeps the default memory request and limit.
    expect(spec.containers[0]!.resources).toEqual({ requests: { cpu: '2', memory: '128Mi' }, limits: { memory: '512Mi' } });
    expect(workerEnv(objects).get('WORKER_CONCURRENCY')).toBe('64');
    const apiSpec = podSpec(find(objects, 'Deployment', FULLNAME));
    expect(apiSpec.nodeSelector).toBeUndefined();
    expect(apiSpec.tolerations).toBeUndefined();
  });

  it('the worker HPA targets the worker Deployment', async () => {
    const objects = await render({ worker: { enabled: true, autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 30 } } });
    expect(get(find(objects, 'Deployment', WORKER), 'spec.replicas')).toBeUndefined();
    expect(get(find(objects, 'Deployment', FULLNAME), 'spec.replicas')).toBe(2);
    const hpa = find(objects, 'HorizontalPodAutoscaler', WORKER);
    expect(get(hpa, 'spec.scaleTargetRef')).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: WORKER });
    expect(get(hpa, 'spec')).toMatchObject({ minReplicas: 3, maxReplicas: 30 });
    expect(objects.some((o) => o.kind === 'HorizontalPodAutoscaler' && o.metadata.name === FULLNAME)).toBe(false);
  });

  it('KEDA replaces the worker HPA and scales on the api queue depth', async () => {
    const objects = await render({
      worker: {
        enabled: true,
        queues: ['emails', 'hooks.v2'],
        keda: { enabled: true, minReplicaCount: 0, prometheus: { serverAddress: 'http://prom.monitoring:9090', authenticationRef: 'prom-auth' } },
      },
    });
    expect(objects.some((o) => o.kind === 'HorizontalPodAutoscaler')).toBe(false);
    expect(get(find(objects, 'Deployment', WORKER), 'spec.replicas')).toBeUndefined();
    const so = find(objects, 'ScaledObject', WORKER);
    expect(so.apiVersion).toBe('keda.sh/v1alpha1');
    expect(get(so, 'spec.scaleTargetRef')).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: WORKER });
    expect(get(so, 'spec.minReplicaCount')).toBe(0);
    const [trigger, ...rest] = get<Record<string, unknown>[]>(so, 'spec.triggers');
    expect(rest).toEqual([]);
    expect(trigger).toMatchObject({ type: 'prometheus', authenticationRef: { name: 'prom-auth' } });
    const metadata = get<Record<string, string>>(trigger, 'metadata');
    expect(metadata.serverAddress).toBe('http://prom.monitoring:9090');
    expect(metadata.threshold).toBe('50');
    expect(metadata.query).toBe(
      `sum(max by (queue) (pgdispatch_queue_depth{namespace="${NAMESPACE}",service="${FULLNAME}",queue=~"emails|hooks\\\\.v2",state="queued"}))`,
    );
  });

  it('KEDA can scale on the oldest waiting job instead, over every queue', async () => {
    const objects = await render({
      worker: { enabled: true, keda: { enabled: true, prometheus: { serverAddress: 'http://prom:9090', metric: 'oldestWaiting', threshold: '30' } } },
    });
    const metadata = get<Record<string, string>>(find(objects, 'ScaledObject', WORKER), 'spec.triggers.0.metadata');
    expect(metadata.query).toBe(`max(pgdispatch_queue_oldest_waiting_seconds{namespace="${NAMESPACE}",service="${FULLNAME}"})`);
    expect(metadata.threshold).toBe('30');
  });

  it('the PodMonitor scrapes worker pods only', async () => {
    const objects = await render({ worker: { enabled: true }, metrics: { podMonitor: { enabled: true } } });
    const pm = find(objects, 'PodMonitor', WORKER);
    expect(selects(get(pm, 'spec.selector.matchLabels'), podLabels(find(objects, 'Deployment', WORKER)))).toBe(true);
    expect(selects(get(pm, 'spec.selector.matchLabels'), podLabels(find(objects, 'Deployment', FULLNAME)))).toBe(false);
    expect(get(pm, 'spec.podMetricsEndpoints')).toEqual([{ port: 'http', path: '/metrics', interval: '30s' }]);
  });

  it('worker.apiUrl overrides API_URL, e.g. for workers in another namespace', async () => {
    const objects = await render({ worker: { enabled: true, apiUrl: 'https://dispatch.example.com' } });
    expect(workerEnv(objects).get('API_URL')).toBe('https://dispatch.example.com');
  });
});
