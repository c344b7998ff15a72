/**
 * The package entry (`@pgdispatch/worker`): what a team needs to run its own tasks — defineTask,
 * the handler's context, createWorker, errors, the tasks-module loader. The subpaths
 * (`@pgdispatch/worker/task`, `/runtime`, `/http-transport`, …) stay available for the rest.
 */
export { createWorker, readinessOf } from './create-worker.js';
export type { CreateWorkerOptions, Worker, WorkerReadiness } from './create-worker.js';
export { defineTask, TaskRegistry } from './task.js';
export type { TaskDefinition, TaskHandler } from './task.js';
export type { JobContext } from './context.js';
export { JobCancelledError, NonRetryableError, WorkerShutdownError } from './errors.js';
export { builtinTasks } from './builtin-tasks.js';
export { loadTaskRegistry, loadTasksModule, TasksModuleError } from './load-tasks.js';
export type { ApiConnection, ApiConnectionState } from './api-connection.js';
export type { JobFinishedEvent, JobOutcome, WorkerStats } from './runtime.js';
export { createJsonLogger, silentLogger } from '@pgdispatch/core/log';
export type { Logger, LogLevel } from '@pgdispatch/core/log';
export type { TaskPayload, TaskSpec } from '@pgdispatch/core/task-spec';
