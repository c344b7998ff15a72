#!/usr/bin/env node
/**
 * `pgdispatch-worker [tasks-module]`: a standalone worker process for a team's own tasks, from
 * the `@pgdispatch/worker` package (no checkout, no database credentials). It is the image's role
 * worker without the rest of the server: the same configuration variables, parsed by the same zod
 * schema in core, and the same runtime. Like apps/server, this entry point is where the
 * environment is read (docs/architecture.md §1).
 *
 *   API_URL=http://pgdispatch:8080 WORKER_TOKEN=… pgdispatch-worker ./tasks.mjs
 *   NODE_OPTIONS='--import tsx' pgdispatch-worker ./tasks.ts        # TypeScript through tsx
 */
import { createRequire } from 'node:module';
import { ConfigError, parseConfig, type Config } from '@pgdispatch/core/config';
import { createJsonLogger } from '@pgdispatch/core/log';
import { resolveRole } from '@pgdispatch/core/roles';
import { createWorker } from './create-worker.js';
import { startHealthServer } from './health-server.js';
import { loadTaskRegistry, TasksModuleError } from './load-tasks.js';
import type { TaskRegistry } from './task.js';

const USAGE = `usage: pgdispatch-worker [tasks-module]

Runs a pgdispatch worker: pulls jobs of the tasks in the module from the api tier over HTTP.
The module exports its tasks (defineTask) as \`tasks\` or as the default export.

environment:
  API_URL              base URL of the api tier (required)
  WORKER_TOKEN         worker credential: a JWT from \`pgdispatch token\` or a WORKER_KEYS secret (required)
  TASKS_MODULE         the tasks module, when not given as the argument
  LISTEN_QUEUES        queues to pull: * (default) or a comma list
  WORKER_CONCURRENCY   handlers at once (default 16)      WORKER_PREFETCH  jobs claimed ahead (default 0)
  BUILTIN_TASKS, HTTP_TASK_ALLOW, HEARTBEAT_MS, SHUTDOWN_GRACE_MS, DEQUEUE_MAX_WAIT_MS, LOG_LEVEL
  HOST, PORT           health endpoint (/healthz, /readyz), default 0.0.0.0:8080; PORT=0 picks a free port
`;

async function main(argv: string[], env: Record<string, string | undefined>): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [moduleArg, ...rest] = argv;
  if (rest.length > 0 || moduleArg?.startsWith('-')) {
    process.stderr.write(USAGE);
    return 2;
  }
  let config: Readonly<Config>;
  try {
    config = parseConfig({ ...env, DISPATCH_ROLE: 'worker', ...(moduleArg ? { TASKS_MODULE: moduleArg } : {}) });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`pgdispatch-worker: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  const log = createJsonLogger({ level: config.LOG_LEVEL, base: { role: 'worker' } });
  if (!config.TASKS_MODULE) log.warn('no tasks module given: only the built-in tasks run', { builtins: config.BUILTIN_TASKS });
  let tasks: TaskRegistry;
  try {
    tasks = await loadTaskRegistry({
      ...(config.TASKS_MODULE ? { tasksModule: config.TASKS_MODULE } : {}),
      builtins: { names: config.BUILTIN_TASKS, http: { allow: config.HTTP_TASK_ALLOW, maxResponseBytes: config.HTTP_TASK_MAX_RESPONSE_BYTES } },
    });
  } catch (err) {
    if (!(err instanceof TasksModuleError)) throw err;
    process.stderr.write(`pgdispatch-worker: ${err.message}\n`);
    return 1;
  }
  const version = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
  const worker = createWorker({
    apiUrl: config.API_URL ?? '',
    token: config.WORKER_TOKEN ?? '',
    tasks,
    queues: resolveRole(config).queues,
    concurrency: config.WORKER_CONCURRENCY,
    prefetch: config.WORKER_PREFETCH,
    heartbeatMs: config.HEARTBEAT_MS,
    shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
    dequeueWaitMs: config.DEQUEUE_MAX_WAIT_MS,
    log,
  });
  const health = await startHealthServer({ host: config.HOST, port: config.PORT, version, readiness: () => worker.readiness() });
  worker.start();
  log.info('pgdispatch worker serving', { url: health.url, apiUrl: config.API_URL, tasks: tasks.names(), version });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info('stopping', { signal });
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await worker.stop();
  await health.close();
  return 0;
}

main(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`pgdispatch-worker: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
