import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { queuePause, queueResume } from '@pgdispatch/engine/queries/queue-admin';
import { freePort, type BenchDb } from '../lib/pg-target.js';
import { REPO_ROOT, spawnNode, waitForHttp, type Child } from '../lib/proc.js';
import { installPgdispatch } from './pgdispatch-engine.js';
import type { BenchContext } from './types.js';
import { QUEUE } from './types.js';

/**
 * Spawning `node apps/server/dist/cli.js serve` in a role, exactly as the image runs it. Server
 * parts of the bench report "pending: server not built" while the CLI is missing.
 */
export const SERVER_CLI = path.join(REPO_ROOT, 'apps/server/dist/cli.js');
/** The bench's handlers for pgdispatch (same trivial handler as the peers'), as a TASKS_MODULE. */
export const TASKS_MODULE = fileURLToPath(new URL('../workers/pgdispatch-tasks.mjs', import.meta.url));
export const API_KEY = 'bench-api-key-0001';
export const WORKER_KEY = 'bench-worker-key-00000001';

export function serverPending(): string | undefined {
  return existsSync(SERVER_CLI) ? undefined : 'pending: server not built (apps/server/dist/cli.js missing; run npm run build)';
}

export interface ServerProcess {
  child: Child;
  url: string;
}

export interface ServerOptions {
  role: 'all' | 'api' | 'worker';
  db?: BenchDb;
  apiUrl?: string;
  concurrency?: number;
  /** Extra settings (by environment variable). */
  env?: Record<string, string>;
  name?: string;
}

/** Starts a server process and waits until /readyz answers 200. */
export async function startServerProcess(ctx: BenchContext, opts: ServerOptions): Promise<ServerProcess> {
  const port = await freePort();
  const executes = opts.role !== 'api';
  const env: Record<string, string | undefined> = {
    DISPATCH_ROLE: opts.role,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    MIGRATE_ON_START: 'false',
    DATABASE_URL: opts.role === 'worker' ? undefined : opts.db?.url,
    DATABASE_LISTEN_URL: undefined,
    API_KEYS: opts.role === 'worker' ? undefined : `${API_KEY}:admin`,
    WORKER_KEYS: opts.role === 'worker' ? undefined : `${WORKER_KEY}:*`,
    WORKER_TOKEN_SECRET: undefined,
    API_URL: opts.role === 'worker' ? opts.apiUrl : undefined,
    WORKER_TOKEN: opts.role === 'worker' ? WORKER_KEY : undefined,
    TASKS_MODULE: executes ? TASKS_MODULE : undefined,
    WORKER_CONCURRENCY: executes ? String(opts.concurrency ?? 16) : undefined,
    LISTEN_QUEUES: executes ? '*' : undefined,
    ...opts.env,
  };
  const nodeArgs = [...ctx.nodeArgs];
  if (ctx.profileDir && nodeArgs.includes('--cpu-prof')) nodeArgs.push(`--cpu-prof-name=${opts.name ?? opts.role}-${Date.now()}.cpuprofile`);
  const child = spawnNode(SERVER_CLI, ['serve'], { name: opts.name ?? `pgdispatch-${opts.role}`, env, nodeArgs });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/readyz`, child);
  } catch (err) {
    await child.stop(1_000);
    throw err;
  }
  return { child, url };
}

/** Migrates, creates the bench queue and pauses it: the server starts idle, `go` resumes it. */
export async function installPaused(ctx: BenchContext, db: BenchDb): Promise<void> {
  await installPgdispatch(ctx, db);
  await queuePause(db.sql, { name: QUEUE });
}

/** Resuming NOTIFYs, so waiting dispatchers claim at once. */
export async function resume(db: BenchDb): Promise<void> {
  await queueResume(db.sql, { name: QUEUE });
}
