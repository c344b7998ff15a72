/** Value combinations the lint and model-validation tests run over (each on top of BASE_VALUES). */
export const MATRIX: Record<string, object[]> = {
  'defaults (worker off)': [],
  'worker on, api still role all': [{ worker: { enabled: true } }],
  'worker on without its HPA': [{ worker: { enabled: true, autoscaling: { enabled: false } } }],
  'worker on, role api': [{ dispatchRole: 'api', worker: { enabled: true, queues: ['emails', 'reports'] } }],
  'role api without workers (BYOC)': [{ dispatchRole: 'api' }],
  'HPA on both tiers': [
    {
      autoscaling: { enabled: true, targetMemoryUtilizationPercentage: 80 },
      worker: { enabled: true, autoscaling: { enabled: true, targetMemoryUtilizationPercentage: 85 } },
    },
  ],
  'KEDA with scale to zero': [
    { worker: { enabled: true, keda: { enabled: true, minReplicaCount: 0, prometheus: { serverAddress: 'http://prom:9090', authenticationRef: 'prom' } } } },
  ],
  'PDBs off': [{ podDisruptionBudget: { enabled: false }, worker: { enabled: true, podDisruptionBudget: { enabled: false } } }],
  'PDBs by minAvailable percentage': [
    {
      podDisruptionBudget: { minAvailable: '50%', maxUnavailable: null },
      worker: { enabled: true, podDisruptionBudget: { minAvailable: 1, maxUnavailable: null } },
    },
  ],
  'existing Secrets everywhere': [
    {
      database: { url: '', existingSecret: 'db', existingSecretListenUrlKey: 'direct-url' },
      auth: { existingSecret: 'creds' },
      worker: { enabled: true, existingSecret: 'worker-creds' },
    },
  ],
  'PgBouncer with a direct listen URL': [{ database: { listenUrl: 'postgres://direct@db:5432/app', prepare: false, poolMax: 4 } }],
  'migrations off, monitors on': [
    { migrations: { enabled: false }, metrics: { serviceMonitor: { enabled: true }, podMonitor: { enabled: true } }, worker: { enabled: true } },
  ],
  'renamed, pinned image, existing ServiceAccount': [
    {
      nameOverride: 'dispatch',
      fullnameOverride: 'jobs-dispatch',
      image: { digest: `sha256:${'a'.repeat(64)}` },
      imagePullSecrets: [{ name: 'regcred' }],
      serviceAccount: { create: false, name: 'jobs' },
      commonLabels: { team: 'platform' },
      worker: { enabled: true },
    },
  ],
  'Ingress with TLS, extra hosts and rules': [
    {
      ingress: {
        enabled: true,
        ingressClassName: 'nginx',
        hostname: 'dispatch.example.com',
        tls: true,
        annotations: { 'cert-manager.io/cluster-issuer': 'letsencrypt' },
        extraHosts: [{ name: 'jobs.example.com', path: '/v1', pathType: 'Prefix' }],
        extraTls: [{ hosts: ['jobs.example.com'], secretName: 'jobs-tls' }],
        extraRules: [{ host: 'raw.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'other', port: { number: 80 } } } }] } }],
      },
    },
  ],
  'user code on both tiers: team image, volumes, envFrom, preStop everywhere': [
    {
      config: { tasksModule: '/app/tasks/api.mjs' },
      extraEnvFrom: [{ configMapRef: { name: 'app-settings' } }],
      extraVolumes: [{ name: 'tasks', configMap: { name: 'tasks' } }],
      extraVolumeMounts: [{ name: 'tasks', mountPath: '/app/tasks', readOnly: true }],
      worker: {
        enabled: true,
        image: { repository: 'registry.example.com/team/tasks', digest: `sha256:${'b'.repeat(64)}`, pullPolicy: 'Always' },
        tasksModule: '/app/tasks/index.mjs',
        preStopSleepSeconds: 3,
        extraEnvFrom: [{ secretRef: { name: 'mail', optional: true }, prefix: 'MAIL_' }],
        extraVolumes: [{ name: 'tasks', configMap: { name: 'tasks' } }, { name: 'scratch', emptyDir: { medium: 'Memory' } }],
        extraVolumeMounts: [{ name: 'tasks', mountPath: '/app/tasks', readOnly: true }, { name: 'scratch', mountPath: '/scratch' }],
      },
    },
  ],
  'own Node image for the workers, startup probe off': [
    { startupProbe: { enabled: false }, worker: { enabled: true, image: { repository: 'node', tag: '24-bookworm-slim' }, command: ['node', '/srv/worker.js'], args: [] } },
  ],
  'probes off, tasks module, extra env': [
    {
      startupProbe: { enabled: false },
      livenessProbe: { enabled: false },
      readinessProbe: { enabled: false },
      preStopSleepSeconds: 0,
      config: { tasksModule: '/app/tasks/index.js' },
      extraEnv: [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=384' }],
      worker: { enabled: true, extraEnv: [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=384' }] },
    },
  ],
};
