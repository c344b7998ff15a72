import { z } from 'zod';
import { parseAllowList, type DestinationAllowList } from './http-destinations.js';
import { NAME_PATTERN } from './queue-name.js';

const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);
const bool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

/** `*` or a comma list of queue names. */
const listenQueues = z
  .string()
  .default('*')
  .transform((v, ctx) => {
    const trimmed = v.trim();
    if (trimmed === '*' || trimmed === '') return '*' as const;
    const names = [...new Set(trimmed.split(',').map((s) => s.trim()).filter(Boolean))];
    for (const n of names) {
      if (!NAME_PATTERN.test(n)) ctx.addIssue({ code: 'custom', message: `queue name ${JSON.stringify(n)} must match ${NAME_PATTERN.source}` });
    }
    return names;
  });

type IssueSink = { addIssue(issue: { code: 'custom'; message: string }): void };

/**
 * A comma list of `secret:grant` credentials (`grant` defaults to `fallback` when there is no
 * colon; the last colon splits, so secrets may contain colons). `grant` parses what follows the
 * colon, reporting problems to `ctx`.
 */
function credentials<T>(opts: { what: string; minLength: number; fallback: string; grant: (text: string, ctx: IssueSink) => T }) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      const out: { secret: string; grant: T }[] = [];
      for (const entry of (v ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
        const idx = entry.lastIndexOf(':');
        const secret = idx > 0 ? entry.slice(0, idx) : entry;
        if (secret.length < opts.minLength) ctx.addIssue({ code: 'custom', message: `each ${opts.what} must be at least ${opts.minLength} characters` });
        out.push({ secret, grant: opts.grant((idx > 0 ? entry.slice(idx + 1) : opts.fallback).trim(), ctx) });
      }
      return out;
    });
}

/** `secret:scope+scope,secret2:scope`; scopes are enqueue, read, admin (default admin). */
const apiKeys = credentials({
  what: 'API key',
  minLength: 8,
  fallback: 'admin',
  grant: (text, ctx) => {
    const scopes = text.split('+').map((s) => s.trim());
    for (const s of scopes) {
      if (!API_SCOPES.includes(s as ApiScope)) ctx.addIssue({ code: 'custom', message: `unknown scope ${JSON.stringify(s)} (enqueue, read, admin)` });
    }
    return scopes as ApiScope[];
  },
}).transform((keys): ApiKey[] => keys.map((k) => ({ secret: k.secret, scopes: k.grant })));

/** `secret:queue+queue,secret2:*` — static worker credentials (the Helm chart generates one); default `*`. */
const workerKeys = credentials({
  what: 'worker key',
  minLength: 16,
  fallback: '*',
  grant: (text, ctx): '*' | string[] => {
    if (text === '*') return '*';
    const queues = text.split('+').map((s) => s.trim()).filter(Boolean);
    for (const q of queues) if (!NAME_PATTERN.test(q)) ctx.addIssue({ code: 'custom', message: `queue name ${JSON.stringify(q)} must match ${NAME_PATTERN.source}` });
    return queues;
  },
}).transform((keys): WorkerKey[] => keys.map((k) => ({ secret: k.secret, queues: k.grant })));

/** The tasks every worker can run without user code (packages/worker/src/builtin-tasks.ts). */
export const BUILTIN_TASK_NAMES = ['noop', 'sleep', 'http.request'] as const;
export type BuiltinTaskName = (typeof BUILTIN_TASK_NAMES)[number];

/** `noop,sleep,http.request` (default: all), `none`, or any comma list of them. */
const builtinTaskList = z
  .string()
  .default(BUILTIN_TASK_NAMES.join(','))
  .transform((v, ctx) => {
    const trimmed = v.trim();
    if (trimmed === 'none' || trimmed === '') return [] as BuiltinTaskName[];
    const names = [...new Set(trimmed.split(',').map((s) => s.trim()).filter(Boolean))];
    for (const n of names) {
      if (!(BUILTIN_TASK_NAMES as readonly string[]).includes(n)) {
        ctx.addIssue({ code: 'custom', message: `unknown built-in task ${JSON.stringify(n)} (${BUILTIN_TASK_NAMES.join(', ')}, or none)` });
      }
    }
    return names as BuiltinTaskName[];
  });

/** `host,cidr,address,…` that http.request may reach although they are loopback/private/link-local. */
const httpTaskAllow = z
  .string()
  .optional()
  .transform((v, ctx): DestinationAllowList => {
    const { list, problems } = parseAllowList(v);
    for (const message of problems) ctx.addIssue({ code: 'custom', message });
    return list;
  });

export interface WorkerKey {
  secret: string;
  queues: '*' | string[];
}

export const API_SCOPES = ['enqueue', 'read', 'admin'] as const;
export type ApiScope = (typeof API_SCOPES)[number];
export interface ApiKey {
  secret: string;
  scopes: ApiScope[];
}

/**
 * Every setting of pgdispatch, keyed by its environment variable name. Helm values map one to
 * one onto these names. Units are in the names (`_MS`, `_SECONDS`, `_BYTES`).
 */
export const configSchema = z.object({
  /** all (default) | api | worker — what this process does; see roles.ts. */
  DISPATCH_ROLE: z.enum(['all', 'api', 'worker']).default('all'),
  /** Queues this process executes: `*` (default) or a comma list. */
  LISTEN_QUEUES: listenQueues,
  /** PostgreSQL URL. Unset in role all → embedded PostgreSQL. Must be unset in role worker. */
  DATABASE_URL: optionalString,
  /** Direct (non-pooled) URL for LISTEN when DATABASE_URL goes through PgBouncer. */
  DATABASE_LISTEN_URL: optionalString,
  /** Connection pool size (default 10). */
  DATABASE_POOL_MAX: int(10, 1),
  /**
   * Roles all/api: how long /readyz keeps answering 200 (body `database: "down"`) through a database
   * outage before it answers 503, in ms (default 30000). Requests get 503 + Retry-After meanwhile.
   */
  DATABASE_OUTAGE_GRACE_MS: int(30_000, 0),
  /** Server-side prepared statements (default true); set false behind PgBouncer transaction mode. */
  DATABASE_PREPARE: bool(true),
  /**
   * Longest wait for a new database connection, in ms (default 1000). During an outage a request
   * fails with 503 + Retry-After after at most about this long instead of hanging.
   */
  DATABASE_CONNECT_TIMEOUT_MS: int(1_000, 100),
  /**
   * statement_timeout and idle_in_transaction_session_timeout of every pool connection, in ms
   * (default 15000; 0 = none). A claim or write stuck behind a lock ends with a retryable 503.
   */
  DATABASE_STATEMENT_TIMEOUT_MS: int(15_000, 0),
  /** Data directory of the embedded PostgreSQL (default ./.pgdispatch/data). */
  PGDISPATCH_DATA_DIR: z.string().default('./.pgdispatch/data'),
  /** Port of the embedded PostgreSQL (default 54329). */
  EMBEDDED_PG_PORT: int(54329, 1),
  /** HTTP listen address (default 0.0.0.0). */
  HOST: z.string().default('0.0.0.0'),
  /** HTTP port: API in roles all/api, health + metrics in role worker (default 8080; 0 = ephemeral). */
  PORT: int(8080, 0),
  /** Role worker: base URL of the api tier, e.g. http://pgdispatch:8080. */
  API_URL: optionalString,
  /** Role worker: the worker JWT minted by `pgdispatch token`. */
  WORKER_TOKEN: optionalString,
  /** Roles all/api: HS256 secret (≥ 32 chars) that signs and verifies worker JWTs. */
  WORKER_TOKEN_SECRET: optionalString,
  /** Roles all/api: static worker credentials `secret:queue+queue` (or `secret:*`), accepted besides JWTs. */
  WORKER_KEYS: workerKeys,
  /** Public API keys: `secret:scope+scope,...` (scopes enqueue, read, admin). Empty = auth off (role all only). */
  API_KEYS: apiKeys,
  /** Job lease length in ms (default 30000); heartbeats extend it. */
  LEASE_MS: int(30_000, 1_000),
  /** Worker heartbeat interval in ms (default 10000); must be under LEASE_MS / 2. */
  HEARTBEAT_MS: int(10_000, 100),
  /** Most jobs one claim statement takes (default 500). */
  CLAIM_BATCH_MAX: int(500, 1),
  /** Fallback poll interval of the dispatcher in ms (default 1000); NOTIFY is the fast path. */
  POLL_INTERVAL_MS: int(1_000, 10),
  /** How often expired leases are reaped, in ms (default 5000). */
  REAPER_INTERVAL_MS: int(5_000, 100),
  /** How often the scheduler loop of an api/all process looks for due schedules, in ms (default 1000). */
  SCHEDULER_INTERVAL_MS: int(1_000, 10),
  /** A schedule tick later than this, in ms, is missed and follows the schedule's catch-up policy (default 60000). */
  SCHEDULER_GRACE_MS: int(60_000, 0),
  /** Default retention of succeeded/cancelled jobs in seconds (default 86400). */
  RETENTION_SECONDS: int(86_400, 0),
  /** Retention of failed jobs in seconds (default 604800). */
  RETENTION_FAILED_SECONDS: int(604_800, 0),
  /** How long job events (state changes, progress) are kept, in seconds (default 86400). */
  EVENT_RETENTION_SECONDS: int(86_400, 0),
  /**
   * Dead row versions in `jobs` (every claim and completion leaves one) at which the maintenance
   * loop runs its own VACUUM of the table, checked every 5 s (default 50000; 0 = leave it to
   * autovacuum). Claims walk the index entries of dead rows until a vacuum removes them.
   */
  VACUUM_DEAD_ROWS: int(50_000, 0),
  /** Interval of `: keep-alive` comments on SSE event streams, in ms (default 15000). */
  SSE_KEEPALIVE_MS: int(15_000, 100),
  /** Largest accepted job payload in bytes (default 262144). */
  MAX_PAYLOAD_BYTES: int(262_144, 1),
  /** Largest accepted HTTP request body in bytes (default 4194304). */
  BODY_LIMIT_BYTES: int(4_194_304, 1_024),
  /** Concurrent job handlers in this process (default 16). */
  WORKER_CONCURRENCY: int(16, 1),
  /** Jobs a worker claims ahead of free handler slots (default 0; raise for throughput). */
  WORKER_PREFETCH: int(0, 0),
  /** Longest a dequeue long-poll waits, in ms (default 30000). */
  DEQUEUE_MAX_WAIT_MS: int(30_000, 0),
  /** On SIGTERM, how long in-flight jobs may finish before release, in ms (default 25000). */
  SHUTDOWN_GRACE_MS: int(25_000, 0),
  /** Built-in tasks this process runs: a comma list of noop, sleep, http.request (default all three) or `none`. */
  BUILTIN_TASKS: builtinTaskList,
  /**
   * Destinations http.request may reach although they are loopback, link-local, private or
   * otherwise internal: host names, addresses and CIDR ranges, comma-separated (default none).
   */
  HTTP_TASK_ALLOW: httpTaskAllow,
  /**
   * Most response-body bytes http.request keeps in the job result (default 65536); the rest is
   * not downloaded and the result says `truncated: true`. Keep it well under MAX_PAYLOAD_BYTES.
   */
  HTTP_TASK_MAX_RESPONSE_BYTES: int(65_536, 0),
  /** Module exporting user tasks (default: built-in tasks only). */
  TASKS_MODULE: optionalString,
  /** Apply migrations at start (default true; the Helm chart sets false and runs a hook Job). */
  MIGRATE_ON_START: bool(true),
  /** debug | info | warn | error (default info). */
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = Partial<Record<keyof z.input<typeof configSchema>, string | undefined>>;

/** One config problem, naming the variable. */
export interface ConfigIssue {
  variable: string;
  message: string;
}

export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(`invalid configuration:\n${issues.map((i) => `  ${i.variable}: ${i.message}`).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/**
 * The signing secret alone, for `pgdispatch token`: minting needs nothing else, so the rest of the
 * role's settings (API_KEYS, DATABASE_URL, …) are neither required nor checked.
 */
export function parseTokenSecret(env: Record<string, string | undefined>): string {
  const secret = configSchema.shape.WORKER_TOKEN_SECRET.parse(env.WORKER_TOKEN_SECRET);
  if (!secret) throw new ConfigError([{ variable: 'WORKER_TOKEN_SECRET', message: 'is required to mint tokens (the secret the api verifies worker JWTs with)' }]);
  if (secret.length < 32) throw new ConfigError([{ variable: 'WORKER_TOKEN_SECRET', message: 'must be at least 32 characters' }]);
  return secret;
}

/**
 * Parses an environment-like record into a frozen Config, or throws ConfigError listing every
 * problem by variable name. Cross-field rules (role vs DATABASE_URL, etc.) are checked here.
 */
export function parseConfig(env: Record<string, string | undefined>): Readonly<Config> {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => ({ variable: String(i.path[0] ?? '?'), message: i.message })));
  }
  const c = parsed.data;
  const issues: ConfigIssue[] = [];
  if (c.HEARTBEAT_MS * 2 > c.LEASE_MS) issues.push({ variable: 'HEARTBEAT_MS', message: `must be at most LEASE_MS / 2 (${c.LEASE_MS / 2})` });
  if (c.DISPATCH_ROLE === 'worker') {
    if (c.DATABASE_URL) issues.push({ variable: 'DATABASE_URL', message: 'must not be set in role worker: workers never hold database credentials' });
    if (!c.API_URL) issues.push({ variable: 'API_URL', message: 'is required in role worker' });
    if (!c.WORKER_TOKEN) issues.push({ variable: 'WORKER_TOKEN', message: 'is required in role worker (a JWT from `pgdispatch token`, or a WORKER_KEYS secret)' });
  }
  if (c.DISPATCH_ROLE === 'api') {
    if (!c.DATABASE_URL) issues.push({ variable: 'DATABASE_URL', message: 'is required in role api (only role all starts an embedded database)' });
    if (!c.WORKER_TOKEN_SECRET && c.WORKER_KEYS.length === 0) {
      issues.push({ variable: 'WORKER_TOKEN_SECRET', message: 'or WORKER_KEYS is required in role api (workers authenticate with one of them)' });
    }
    if (c.API_KEYS.length === 0) issues.push({ variable: 'API_KEYS', message: 'is required in role api' });
    if (c.LISTEN_QUEUES !== '*' && c.LISTEN_QUEUES.length > 0 && env.LISTEN_QUEUES !== undefined) {
      // An api pod executes nothing; a queue list here is almost certainly a misplaced setting.
      issues.push({ variable: 'LISTEN_QUEUES', message: 'has no effect in role api (api pods execute nothing); unset it' });
    }
  }
  if (c.WORKER_TOKEN_SECRET !== undefined && c.WORKER_TOKEN_SECRET.length < 32) {
    issues.push({ variable: 'WORKER_TOKEN_SECRET', message: 'must be at least 32 characters' });
  }
  if (c.MAX_PAYLOAD_BYTES > c.BODY_LIMIT_BYTES) issues.push({ variable: 'MAX_PAYLOAD_BYTES', message: 'must not exceed BODY_LIMIT_BYTES' });
  if (issues.length > 0) throw new ConfigError(issues);
  return Object.freeze(c);
}
