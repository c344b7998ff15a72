import { describe, expect, it } from 'vitest';
import {
  FULLNAME,
  NAMESPACE,
  effectiveEnv,
  find,
  get,
  kinds,
  podLabels,
  podSpec,
  render,
  selects,
  type K8sObject,
} from './helm.js';

const WORKLOADS = ['Deployment', 'Job'];

function workloads(objects: K8sObject[]): K8sObject[] {
  return objects.filter((o) => WORKLOADS.includes(o.kind));
}

describe('api tier (default values)', () => {
  it('renders the api objects and nothing of the worker tier', async () => {
    const objects = await render();
    expect(kinds(objects)).toEqual(
      [
        `ConfigMap/${FULLNAME}`,
        `Deployment/${FULLNAME}`,
        `Job/${FULLNAME}-migrate`,
        `PodDisruptionBudget/${FULLNAME}`,
        `Secret/${FULLNAME}`,
        `Secret/${FULLNAME}-migrate`,
        `Service/${FULLNAME}`,
        `ServiceAccount/${FULLNAME}`,
      ].sort(),
    );
    expect(objects.some((o) => o.metadata.name.includes('worker'))).toBe(false);
  });

  it('the Service selects the api pods and no other pod of the release', async () => {
    const objects = await render({ worker: { enabled: true } });
    const selector = get<Record<string, string>>(find(objects, 'Service', FULLNAME), 'spec.selector');
    const api = find(objects, 'Deployment', FULLNAME);
    expect(selects(selector, podLabels(api))).toBe(true);
    for (const w of workloads(objects).filter((o) => o !== api)) {
      expect(selects(selector, podLabels(w)), `${w.kind}/${w.metadata.name}`).toBe(false);
    }
    expect(get(find(objects, 'Service', FULLNAME), 'spec.ports')).toEqual([{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' }]);
  });

  it('the api Deployment selects its own pods', async () => {
    const api = find(await render(), 'Deployment', FULLNAME);
    expect(selects(get(api, 'spec.selector.matchLabels'), podLabels(api))).toBe(true);
    expect(podLabels(api)['app.kubernetes.io/component']).toBe('api');
  });

  it('dispatchRole "" runs role all with LISTEN_QUEUES; role api drops LISTEN_QUEUES', async () => {
    const all = await render({ listenQueues: ['emails', 'reports'] });
    const allEnv = effectiveEnv(all, podSpec(find(all, 'Deployment', FULLNAME)).containers[0]!);
    expect(allEnv.get('DISPATCH_ROLE')).toBe('all');
    expect(allEnv.get('LISTEN_QUEUES')).toBe('emails,reports');

    const api = await render({ dispatchRole: 'api' });
    const apiEnv = effectiveEnv(api, podSpec(find(api, 'Deployment', FULLNAME)).containers[0]!);
    expect(apiEnv.get('DISPATCH_ROLE')).toBe('api');
    // The server rejects LISTEN_QUEUES in role api: api pods execute nothing.
    expect(apiEnv.has('LISTEN_QUEUES')).toBe(false);
  });

  it('api pods get the database, API keys and worker JWT secret from Secrets, and do not migrate on start', async () => {
    const objects = await render();
    const env = effectiveEnv(objects, podSpec(find(objects, 'Deployment', FULLNAME)).containers[0]!);
    expect(env.get('DATABASE_URL')).toEqual({ secret: FULLNAME, key: 'database-url' });
    expect(env.get('API_KEYS')).toEqual({ secret: FULLNAME, key: 'api-keys' });
    expect(env.get('WORKER_TOKEN_SECRET')).toEqual({ secret: FULLNAME, key: 'worker-token-secret' });
    expect(env.get('MIGRATE_ON_START')).toBe('false');
    expect(env.get('PORT')).toBe('8080');
    expect(env.get('SHUTDOWN_GRACE_MS')).toBe('25000');
    expect(env.has('DATABASE_LISTEN_URL')).toBe(false);
    expect(env.has('WORKER_KEYS')).toBe(false);
  });

  it('generated credentials are strong and API keys carry every scope', async () => {
    const secret = find(await render(), 'Secret', FULLNAME);
    const data = get<Record<string, string>>(secret, 'data');
    const decode = (k: string) => Buffer.from(data[k]!, 'base64').toString('utf8');
    expect(decode('database-url')).toBe('postgres://pgdispatch:s3cret@db.example:5432/pgdispatch');
    expect(decode('api-keys')).toMatch(/^[A-Za-z0-9]{40}:enqueue\+read\+admin$/);
    expect(decode('worker-token-secret')).toMatch(/^[A-Za-z0-9]{64}$/);
  });

  it('existing Secrets replace the chart Secret and their keys are used', async () => {
    const objects = await render(
      { database: { url: '', existingSecret: 'db', existingSecretKey: 'uri', existingSecretListenUrlKey: 'direct' } },
      { auth: { existingSecret: 'creds', existingSecretApiKeysKey: 'keys', existingSecretWorkerTokenSecretKey: 'jwt' } },
    );
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
    const env = effectiveEnv(objects, podSpec(find(objects, 'Deployment', FULLNAME)).containers[0]!);
    expect(env.get('DATABASE_URL')).toEqual({ secret: 'db', key: 'uri' });
    expect(env.get('DATABASE_LISTEN_URL')).toEqual({ secret: 'db', key: 'direct' });
    expect(env.get('API_KEYS')).toEqual({ secret: 'creds', key: 'keys' });
    expect(env.get('WORKER_TOKEN_SECRET')).toEqual({ secret: 'creds', key: 'jwt' });
    // Migrations use the direct URL: DDL and advisory locks do not belong behind PgBouncer.
    const job = find(objects, 'Job', `${FULLNAME}-migrate`);
    expect(effectiveEnv(objects, podSpec(job).containers[0]!).get('DATABASE_URL')).toEqual({ secret: 'db', key: 'direct' });
  });

  it('a PgBouncer setup gets DATABASE_PREPARE=false and a direct DATABASE_LISTEN_URL', async () => {
    const objects = await render({ database: { listenUrl: 'postgres://direct@db:5432/app', prepare: false } });
    const env = effectiveEnv(objects, podSpec(find(objects, 'Deployment', FULLNAME)).containers[0]!);
    expect(env.get('DATABASE_PREPARE')).toBe('false');
    expect(env.get('DATABASE_LISTEN_URL')).toEqual({ secret: FULLNAME, key: 'database-listen-url' });
    const hookSecret = find(objects, 'Secret', `${FULLNAME}-migrate`);
    expect(Buffer.from(get<string>(hookSecret, 'data.database-url'), 'base64').toString()).toBe('postgres://direct@db:5432/app');
  });

  it('the migration Job is a pre-install,pre-upgrade hook that never restarts in place', async () => {
    const objects = await render();
    const job = find(objects, 'Job', `${FULLNAME}-migrate`);
    expect(job.metadata.annotations).toMatchObject({
      'helm.sh/hook': 'pre-install,pre-upgrade',
      'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
    });
    expect(get(job, 'spec.backoffLimit')).toBe(3);
    const spec = podSpec(job);
    expect(spec.restartPolicy).toBe('Never');
    expect(spec.containers[0]!.args).toEqual(['migrate']);
    // The release's ServiceAccount does not exist yet at pre-install.
    expect(spec.serviceAccountName).toBeUndefined();
    // Its Secret is a hook too, created before the Job (lower weight).
    const hookSecret = find(objects, 'Secret', `${FULLNAME}-migrate`);
    expect(Number(hookSecret.metadata.annotations?.['helm.sh/hook-weight'])).toBeLessThan(Number(job.metadata.annotations?.['helm.sh/hook-weight']));
    expect(hookSecret.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
  });

  it('migrations.enabled=false drops the hook and lets api pods migrate on start', async () => {
    const objects = await render({ migrations: { enabled: false } });
    expect(objects.some((o) => o.kind === 'Job' || o.metadata.name.endsWith('-migrate'))).toBe(false);
    const env = effectiveEnv(objects, podSpec(find(objects, 'Deployment', FULLNAME)).containers[0]!);
    expect(env.get('MIGRATE_ON_START')).toBe('true');
  });

  it('the HPA and PDB target the api Deployment and its pods', async () => {
    const objects = await render({ autoscaling: { enabled: true, targetMemoryUtilizationPercentage: 80 } });
    const api = find(objects, 'Deployment', FULLNAME);
    expect(get(api, 'spec.replicas')).toBeUndefined();
    const hpa = find(objects, 'HorizontalPodAutoscaler', FULLNAME);
    expect(get(hpa, 'spec.scaleTargetRef')).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: FULLNAME });
    expect(get<unknown[]>(hpa, 'spec.metrics').map((m) => get(m, 'resource.name'))).toEqual(['cpu', 'memory']);
    const pdb = find(objects, 'PodDisruptionBudget', FULLNAME);
    expect(selects(get(pdb, 'spec.selector.matchLabels'), podLabels(api))).toBe(true);
    expect(get(pdb, 'spec.maxUnavailable')).toBe(1);
  });

  it('every pod runs non-root with a read-only root filesystem and a writable /tmp', async () => {
    const objects = await render({ worker: { enabled: true } });
    for (const w of workloads(objects)) {
      const spec = podSpec(w);
      expect(spec.securityContext, w.metadata.name).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } });
      expect(spec.automountServiceAccountToken).toBe(false);
      for (const c of spec.containers) {
        expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
        expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
      }
    }
  });

  it('probes hit /healthz and /readyz on the pod port; grace outlasts SHUTDOWN_GRACE_MS', async () => {
    const objects = await render();
    const spec = podSpec(find(objects, 'Deployment', FULLNAME));
    const c = spec.containers[0]!;
    expect(get(c, 'livenessProbe.httpGet')).toEqual({ path: '/healthz', port: 'http' });
    expect(get(c, 'readinessProbe.httpGet')).toEqual({ path: '/readyz', port: 'http' });
    const graceMs = Number(effectiveEnv(objects, c).get('SHUTDOWN_GRACE_MS'));
    expect((spec.terminationGracePeriodSeconds as number) * 1000).toBeGreaterThan(graceMs);
  });

  it('a config change rolls the api pods through checksum/config', async () => {
    const checksum = async (v: object) => get<string>(find(await render(v), 'Deployment', FULLNAME), 'spec.template.metadata.annotations.checksum/config');
    const pinned = { auth: { apiKeys: 'k-0123456789:admin', workerTokenSecret: 'x'.repeat(32) } };
    const a = await checksum(pinned);
    expect(a).toMatch(/^[a-f0-9]{64}$/);
    expect(await checksum(pinned)).toBe(a);
    expect(await checksum({ ...pinned, config: { logLevel: 'debug' } })).not.toBe(a);
    expect(await checksum({ ...pinned, database: { url: 'postgres://other@db/app' } })).not.toBe(a);
  });

  it('the ServiceMonitor scrapes the api Service in the release namespace', async () => {
    const objects = await render({ metrics: { serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus' } } } });
    const sm = find(objects, 'ServiceMonitor', FULLNAME);
    const service = find(objects, 'Service', FULLNAME);
    expect(selects(get(sm, 'spec.selector.matchLabels'), service.metadata.labels ?? {})).toBe(true);
    expect(get(sm, 'spec.namespaceSelector.matchNames')).toEqual([NAMESPACE]);
    expect(get(sm, 'spec.endpoints')).toEqual([{ port: 'http', path: '/metrics', interval: '30s', scrapeTimeout: '10s' }]);
    expect(sm.metadata.labels?.release).toBe('kube-prometheus');
  });
});
