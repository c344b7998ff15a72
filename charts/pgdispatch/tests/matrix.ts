/** Value combinations the lint and model-validation tests run over (each on top of BASE_VALUES). */
export const MATRIX: Record<string, object[]> = {
  'defaults (worker off)': [],
  'worker on, api still role all': [{ worker: { enabled: true } }],
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
  'probes off, tasks module, extra env': [
    {
      livenessProbe: { enabled: false },
      readinessProbe: { enabled: false },
      config: { tasksModule: '/app/tasks/index.js' },
      extraEnv: [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=384' }],
      worker: { enabled: true, extraEnv: [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=384' }] },
    },
  ],
};
