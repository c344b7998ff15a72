import { describe, expect, it } from 'vitest';
import { BASE_VALUES, renderError, templateRaw } from './helm.js';

const SCHEMA = "values don't meet the specifications of the schema(s)";
const VALIDATE = 'pgdispatch: invalid values:';

describe('values.schema.json rejects impossible values', () => {
  const cases: [string, object, RegExp][] = [
    ['negative api replicas', { replicaCount: -1 }, /replicaCount: Must be greater than or equal to 0/],
    ['negative worker replicas', { worker: { replicaCount: -3 } }, /worker\.replicaCount: Must be greater than or equal to 0/],
    ['an unknown role', { dispatchRole: 'worker' }, /dispatchRole: dispatchRole must be one of the following: "", "all", "api"/],
    ['an unknown top-level key', { replicas: 3 }, /Additional property replicas is not allowed/],
    ['an unknown worker key', { worker: { replica: 3 } }, /worker: Additional property replica is not allowed/],
    ['worker enabled with an empty queue list', { worker: { enabled: true, queues: [] } }, /worker\.queues: Array must have at least 1 items/],
    ['worker enabled with the queue list removed', { worker: { enabled: true, queues: null } }, /worker: queues is required/],
    ['a negative preStop pause', { preStopSleepSeconds: -1 }, /preStopSleepSeconds: Must be greater than or equal to 0/],
    ['an unknown worker image pull policy', { worker: { image: { pullPolicy: 'Sometimes' } } }, /worker\.image\.pullPolicy: worker\.image\.pullPolicy must be one of the following/],
    ['an unknown Ingress path type', { ingress: { pathType: 'Regex' } }, /ingress\.pathType: ingress\.pathType must be one of the following/],
    ['an invalid queue name', { worker: { queues: ['Emails!'] } }, /worker\.queues\.0: Does not match pattern/],
    ['an unknown log level', { config: { logLevel: 'verbose' } }, /config\.logLevel: config\.logLevel must be one of the following/],
    ['a port out of range', { config: { port: 70000 } }, /config\.port: Must be less than or equal to 65535/],
    ['a string where an integer belongs', { config: { leaseMs: '30s' } }, /config\.leaseMs: Invalid type\. Expected: integer, given: string/],
    ['an unknown KEDA metric', { worker: { keda: { prometheus: { metric: 'cpu' } } } }, /worker\.keda\.prometheus\.metric: worker\.keda\.prometheus\.metric must be one of the following/],
    ['an API key with an unknown scope', { auth: { apiKeys: 'abcdefgh12:write' } }, /auth\.apiKeys: Does not match pattern/],
    ['a worker token containing a separator', { worker: { token: 'abc:defghijklmnopq' } }, /worker\.token: Does not match pattern/],
  ];
  for (const [what, values, message] of cases) {
    it(`rejects ${what}`, async () => {
      const stderr = await renderError(values);
      expect(stderr).toContain(SCHEMA);
      expect(stderr).toMatch(message);
    });
  }
});

describe('pgdispatch.validateValues fails once, listing every problem with guidance', () => {
  it('requires an external database', async () => {
    const result = await templateRaw([{}]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(VALIDATE);
    expect(result.stderr).toContain('set database.url or database.existingSecret (an external PostgreSQL is required');
  });

  it('collects every problem into one failure', async () => {
    const stderr = await renderError({
      database: { existingSecret: 'db' },
      config: { heartbeatMs: 20000, maxPayloadBytes: 9_000_000 },
      terminationGracePeriodSeconds: 20,
      worker: { enabled: true, queues: ['*', 'emails'], token: 'short', extraEnv: [{ name: 'DATABASE_URL', value: 'postgres://x' }] },
    });
    const problems = stderr.split('\n').filter((l) => l.startsWith('  - '));
    expect(problems).toEqual([
      '  - database: set only one of database.url and database.existingSecret',
      '  - config.heartbeatMs (20000) must be at most half of config.leaseMs (30000), or leases expire between heartbeats',
      '  - config.maxPayloadBytes (9000000) must not exceed config.bodyLimitBytes (4194304)',
      '  - terminationGracePeriodSeconds (20) must be at least preStopSleepSeconds (5 s) + config.shutdownGraceMs (25000 ms) + 5 s = 35 s, or Kubernetes kills pods before in-flight jobs are released',
      '  - worker.queues: "*" already means every queue; use it alone',
      '  - worker.token must be at least 16 characters (leave it empty to generate one)',
      '  - worker.extraEnv must not set DATABASE_URL: workers never hold database credentials (they reach the api at API_URL)',
    ]);
    expect(stderr.match(new RegExp(VALIDATE, 'g'))).toHaveLength(1);
  });

  it('rejects a KEDA ScaledObject without a Prometheus to ask', async () => {
    const stderr = await renderError({ worker: { enabled: true, keda: { enabled: true } } });
    expect(stderr).toContain('worker.keda.prometheus.serverAddress is required');
  });

  it('rejects a worker grace period shorter than the shutdown grace', async () => {
    const stderr = await renderError({ worker: { enabled: true, terminationGracePeriodSeconds: 25 } });
    expect(stderr).toContain('worker.terminationGracePeriodSeconds (25) must be at least worker.preStopSleepSeconds (0 s) + config.shutdownGraceMs (25000 ms) + 5 s = 30 s');
  });

  it('rejects a PDB with both minAvailable and maxUnavailable', async () => {
    const stderr = await renderError({ podDisruptionBudget: { minAvailable: 1, maxUnavailable: 1 } });
    expect(stderr).toContain('podDisruptionBudget: set only one of minAvailable and maxUnavailable');
  });

  it('rejects min above max replicas of either tier', async () => {
    const stderr = await renderError({
      autoscaling: { enabled: true, minReplicas: 5, maxReplicas: 2 },
      worker: { enabled: true, keda: { enabled: true, minReplicaCount: 9, maxReplicaCount: 3, prometheus: { serverAddress: 'http://prom:9090' } } },
    });
    expect(stderr).toContain('autoscaling.minReplicas must not exceed autoscaling.maxReplicas');
    expect(stderr).toContain('worker.keda.minReplicaCount must not exceed worker.keda.maxReplicaCount');
  });

  it('rejects a short WORKER_TOKEN_SECRET', async () => {
    const stderr = await renderError({ auth: { workerTokenSecret: 'too-short' } });
    expect(stderr).toContain('auth.workerTokenSecret must be at least 32 characters');
  });

  it('ignores worker settings while the worker tier is off', async () => {
    const result = await templateRaw([BASE_VALUES, { worker: { enabled: false, queues: ['*', 'x'], token: 'short', terminationGracePeriodSeconds: 1, image: { repository: 'no-tag' }, resources: {} } }]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });
});
