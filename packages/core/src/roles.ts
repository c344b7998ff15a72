import type { Config } from './config.js';

export type Role = 'all' | 'api' | 'worker';

/** What one process does, derived from config alone. Pure: importing or calling it starts nothing. */
export interface RolePlan {
  role: Role;
  /** Serves the public `/v1` and internal `/internal/v1` APIs. */
  servesApi: boolean;
  /** Claims jobs from Postgres for waiting executors. */
  dispatches: boolean;
  /** Runs maintenance: the lease reaper and retention purge. */
  runsMaintenance: boolean;
  /** Executes jobs in this process. */
  executes: boolean;
  /** How executors reach the dispatcher. */
  transport: 'in-process' | 'http' | null;
  /** Needs a database connection (and may start an embedded one). */
  needsDatabase: boolean;
  /** Starts an embedded PostgreSQL because DATABASE_URL is unset. */
  embeddedDatabase: boolean;
  /** Queues this process executes (`*` = all); empty when it executes nothing. */
  queues: '*' | string[];
}

export function resolveRole(config: Pick<Config, 'DISPATCH_ROLE' | 'LISTEN_QUEUES' | 'DATABASE_URL'>): RolePlan {
  const role = config.DISPATCH_ROLE;
  const isApi = role === 'api' || role === 'all';
  const executes = role === 'worker' || role === 'all';
  return {
    role,
    servesApi: isApi,
    dispatches: isApi,
    runsMaintenance: isApi,
    executes,
    transport: role === 'all' ? 'in-process' : role === 'worker' ? 'http' : null,
    needsDatabase: isApi,
    embeddedDatabase: role === 'all' && !config.DATABASE_URL,
    queues: executes ? config.LISTEN_QUEUES : [],
  };
}

/** Whether a process listening on `listen` executes jobs of `queue`. */
export function listensTo(listen: '*' | readonly string[], queue: string): boolean {
  return listen === '*' || listen.includes(queue);
}
