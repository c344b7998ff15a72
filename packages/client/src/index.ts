/**
 * The package entry (`@pgdispatch/client`): the public API client and the task contract. Only the
 * names a producer needs; the subpaths (`@pgdispatch/client/client`, `/task`, `/retry-fetch`)
 * stay available for the rest.
 */
export { PgDispatchClient, jobFromWire } from './client.js';
export type { EnqueueInput, EnqueueJob, EnqueueResult, JobPage, ListJobsFilter, PgDispatchClientOptions, QueuePolicyPatch, QueueStats, TaskEnqueueOptions } from './client.js';
export { defineTask, isTaskSpec } from './task.js';
export type { TaskPayload, TaskSpec } from './task.js';
export { DispatchError, isDispatchError } from '@pgdispatch/core/errors';
export type { ErrorCode } from '@pgdispatch/core/errors';
export type { Job, JobError, JobState, QueuePolicy } from '@pgdispatch/core/types';
