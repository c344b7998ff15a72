import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './config.js';

const API_ENV = {
  DISPATCH_ROLE: 'api',
  DATABASE_URL: 'postgres://u@db/x',
  WORKER_TOKEN_SECRET: 'x'.repeat(32),
  API_KEYS: 'secret-key-1:admin',
};
const WORKER_ENV = { DISPATCH_ROLE: 'worker', API_URL: 'http://api:8080', WORKER_TOKEN: 'jwt' };

/** The ConfigError thrown for `env`, or a failure when parsing succeeds. */
function issuesOf(env: Record<string, string | undefined>): { variable: string; message: string }[] {
  try {
    parseConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}
const variables = (env: Record<string, string | undefined>) => issuesOf(env).map((i) => i.variable);

describe('parseConfig defaults', () => {
  it('an empty environment is role all with an embedded database and documented defaults', () => {
    const c = parseConfig({});
    expect(c).toMatchObject({
      DISPATCH_ROLE: 'all',
      LISTEN_QUEUES: '*',
      DATABASE_POOL_MAX: 10,
      DATABASE_PREPARE: true,
      DATABASE_CONNECT_TIMEOUT_MS: 1_000,
      DATABASE_STATEMENT_TIMEOUT_MS: 15_000,
      PGDISPATCH_DATA_DIR: './.pgdispatch/data',
      EMBEDDED_PG_PORT: 54329,
      HOST: '0.0.0.0',
      PORT: 8080,
      LEASE_MS: 30_000,
      HEARTBEAT_MS: 10_000,
      CLAIM_BATCH_MAX: 500,
      POLL_INTERVAL_MS: 1_000,
      REAPER_INTERVAL_MS: 5_000,
      RETENTION_SECONDS: 86_400,
      RETENTION_FAILED_SECONDS: 604_800,
      MAX_PAYLOAD_BYTES: 262_144,
      BODY_LIMIT_BYTES: 4_194_304,
      WORKER_CONCURRENCY: 16,
      DEQUEUE_MAX_WAIT_MS: 30_000,
      SHUTDOWN_GRACE_MS: 25_000,
      BUILTIN_TASKS: ['noop', 'sleep', 'http.request'],
      HTTP_TASK_ALLOW: { hosts: [], ranges: [] },
      HTTP_TASK_MAX_RESPONSE_BYTES: 65_536,
      MIGRATE_ON_START: true,
      LOG_LEVEL: 'info',
      API_KEYS: [],
      WORKER_KEYS: [],
    });
    expect(c.DATABASE_URL).toBeUndefined();
  });

  it('returns a frozen object', () => {
    expect(Object.isFrozen(parseConfig({}))).toBe(true);
  });

  it('coerces numbers and booleans from strings', () => {
    const c = parseConfig({ LEASE_MS: '60000', HEARTBEAT_MS: '5000', DATABASE_PREPARE: 'false', MIGRATE_ON_START: '0', PORT: '0' });
    expect(c.LEASE_MS).toBe(60_000);
    expect(c.HEARTBEAT_MS).toBe(5_000);
    expect(c.DATABASE_PREPARE).toBe(false);
    expect(c.MIGRATE_ON_START).toBe(false);
    expect(c.PORT).toBe(0);
  });

  it('treats blank optional strings as unset', () => {
    expect(parseConfig({ DATABASE_URL: '  ' }).DATABASE_URL).toBeUndefined();
  });
});

describe('LISTEN_QUEUES', () => {
  it('parses a comma list, trimming and de-duplicating', () => {
    expect(parseConfig({ LISTEN_QUEUES: ' emails, reports ,emails' }).LISTEN_QUEUES).toEqual(['emails', 'reports']);
  });

  it('treats * and blank as every queue', () => {
    expect(parseConfig({ LISTEN_QUEUES: '*' }).LISTEN_QUEUES).toBe('*');
    expect(parseConfig({ LISTEN_QUEUES: '' }).LISTEN_QUEUES).toBe('*');
  });

  it.each(['Emails', 'a b', '../x', 'x'.repeat(65)])('rejects the queue name %j naming the variable', (bad) => {
    expect(variables({ LISTEN_QUEUES: `ok,${bad}` })).toEqual(['LISTEN_QUEUES']);
  });
});

describe('field errors name the variable', () => {
  it.each([
    ['DISPATCH_ROLE', 'both'],
    ['LEASE_MS', '999'],
    ['LEASE_MS', 'soon'],
    ['HEARTBEAT_MS', '1.5'],
    ['DATABASE_POOL_MAX', '0'],
    ['DATABASE_PREPARE', 'maybe'],
    ['PORT', '-1'],
    ['LOG_LEVEL', 'trace'],
    ['CLAIM_BATCH_MAX', '0'],
    ['MAX_PAYLOAD_BYTES', '0'],
  ])('%s=%j is rejected', (variable, value) => {
    expect(variables({ [variable]: value })).toContain(variable);
  });

  it('reports every problem at once', () => {
    const vars = variables({ DISPATCH_ROLE: 'nope', LOG_LEVEL: 'loud', LEASE_MS: 'x' });
    expect(vars.sort()).toEqual(['DISPATCH_ROLE', 'LEASE_MS', 'LOG_LEVEL']);
  });

  it('the error message lists each variable', () => {
    expect(() => parseConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL:/);
  });
});

describe('API_KEYS and WORKER_KEYS', () => {
  it('parses API keys with scopes; a key without scopes is admin', () => {
    const c = parseConfig({ API_KEYS: 'abcdefgh1:enqueue+read,abcdefgh2' });
    expect(c.API_KEYS).toEqual([
      { secret: 'abcdefgh1', scopes: ['enqueue', 'read'] },
      { secret: 'abcdefgh2', scopes: ['admin'] },
    ]);
  });

  it('rejects short API keys and unknown scopes', () => {
    expect(variables({ API_KEYS: 'short:admin' })).toEqual(['API_KEYS']);
    expect(variables({ API_KEYS: 'abcdefgh1:write' })).toEqual(['API_KEYS']);
  });

  it('parses worker keys with queue lists or *', () => {
    const c = parseConfig({ WORKER_KEYS: `${'k'.repeat(16)}:emails+reports,${'w'.repeat(16)}:*,${'z'.repeat(16)}` });
    expect(c.WORKER_KEYS).toEqual([
      { secret: 'k'.repeat(16), queues: ['emails', 'reports'] },
      { secret: 'w'.repeat(16), queues: '*' },
      { secret: 'z'.repeat(16), queues: '*' },
    ]);
  });

  it('rejects short worker keys and bad queue names in them', () => {
    expect(variables({ WORKER_KEYS: 'short:*' })).toEqual(['WORKER_KEYS']);
    expect(variables({ WORKER_KEYS: `${'k'.repeat(16)}:Bad` })).toEqual(['WORKER_KEYS']);
  });
});

describe('BUILTIN_TASKS and HTTP_TASK_ALLOW', () => {
  it('BUILTIN_TASKS takes a list, none, and refuses unknown names', () => {
    expect(parseConfig({ BUILTIN_TASKS: 'noop, sleep' }).BUILTIN_TASKS).toEqual(['noop', 'sleep']);
    expect(parseConfig({ BUILTIN_TASKS: 'none' }).BUILTIN_TASKS).toEqual([]);
    expect(variables({ BUILTIN_TASKS: 'noop,shell' })).toEqual(['BUILTIN_TASKS']);
  });

  it('HTTP_TASK_ALLOW parses host names, addresses and CIDR ranges, and names bad entries', () => {
    expect(parseConfig({ HTTP_TASK_ALLOW: 'Hooks.Internal, 127.0.0.1, 10.1.0.0/16, [::1], fd00::/8' }).HTTP_TASK_ALLOW).toEqual({
      hosts: ['hooks.internal'],
      ranges: ['127.0.0.1/32', '10.1.0.0/16', '::1/128', 'fd00::/8'],
    });
    expect(issuesOf({ HTTP_TASK_ALLOW: 'ok.example,not a host' })).toEqual([{ variable: 'HTTP_TASK_ALLOW', message: expect.stringContaining('"not a host"') }]);
    expect(variables({ HTTP_TASK_ALLOW: '10.0.0.0/33' })).toEqual(['HTTP_TASK_ALLOW']);
  });
});

describe('cross-field rules', () => {
  it('HEARTBEAT_MS must be at most LEASE_MS / 2', () => {
    expect(variables({ LEASE_MS: '10000', HEARTBEAT_MS: '5001' })).toEqual(['HEARTBEAT_MS']);
    expect(parseConfig({ LEASE_MS: '10000', HEARTBEAT_MS: '5000' }).HEARTBEAT_MS).toBe(5000);
  });

  it('MAX_PAYLOAD_BYTES must not exceed BODY_LIMIT_BYTES', () => {
    expect(variables({ MAX_PAYLOAD_BYTES: '2048', BODY_LIMIT_BYTES: '1024' })).toEqual(['MAX_PAYLOAD_BYTES']);
  });

  it('WORKER_TOKEN_SECRET must be at least 32 characters', () => {
    expect(variables({ WORKER_TOKEN_SECRET: 'x'.repeat(31) })).toEqual(['WORKER_TOKEN_SECRET']);
  });

  describe('role worker', () => {
    it('accepts API_URL and WORKER_TOKEN without a database', () => {
      expect(parseConfig(WORKER_ENV).DISPATCH_ROLE).toBe('worker');
    });
    it('must not have DATABASE_URL', () => {
      expect(variables({ ...WORKER_ENV, DATABASE_URL: 'postgres://x/y' })).toEqual(['DATABASE_URL']);
    });
    it('requires API_URL and WORKER_TOKEN', () => {
      expect(variables({ DISPATCH_ROLE: 'worker' }).sort()).toEqual(['API_URL', 'WORKER_TOKEN']);
    });
  });

  describe('role api', () => {
    it('accepts a database, a worker secret and API keys', () => {
      expect(parseConfig(API_ENV).DISPATCH_ROLE).toBe('api');
    });
    it('accepts WORKER_KEYS instead of WORKER_TOKEN_SECRET', () => {
      expect(parseConfig({ ...API_ENV, WORKER_TOKEN_SECRET: undefined, WORKER_KEYS: 'k'.repeat(16) }).WORKER_KEYS).toHaveLength(1);
    });
    it('requires DATABASE_URL', () => {
      expect(variables({ ...API_ENV, DATABASE_URL: undefined })).toEqual(['DATABASE_URL']);
    });
    it('requires WORKER_TOKEN_SECRET or WORKER_KEYS', () => {
      expect(variables({ ...API_ENV, WORKER_TOKEN_SECRET: undefined })).toEqual(['WORKER_TOKEN_SECRET']);
    });
    it('requires API_KEYS', () => {
      expect(variables({ ...API_ENV, API_KEYS: undefined })).toEqual(['API_KEYS']);
    });
    it('rejects a LISTEN_QUEUES list (api pods execute nothing) but allows *', () => {
      expect(variables({ ...API_ENV, LISTEN_QUEUES: 'emails' })).toEqual(['LISTEN_QUEUES']);
      expect(parseConfig({ ...API_ENV, LISTEN_QUEUES: '*' }).LISTEN_QUEUES).toBe('*');
    });
  });

  it('role all needs no API keys or database', () => {
    expect(() => parseConfig({ DISPATCH_ROLE: 'all' })).not.toThrow();
  });
});
