import type { ClaimedJob, JobError, JobState } from './types.js';

/** Identifies a held lease: every write from an executor names one (fencing). */
export interface LeaseRef {
  id: number;
  leaseToken: string;
}

export interface DequeueRequest {
  /** Queues to pull from: `*` or names (the api intersects them with the credential's queues). */
  queues: '*' | string[];
  /**
   * Tasks the executor can run: `*` (the default, what executors that predate task routing send)
   * or names. Only jobs of these tasks are handed to it; others wait for an executor that knows them.
   */
  tasks?: '*' | string[];
  /** Most jobs wanted now (free handler slots). */
  max: number;
  /** Long-poll bound in ms: resolve with [] when nothing arrives in time. */
  waitMs: number;
  /** Aborting withdraws the request; jobs claimed for it afterwards are released. */
  signal?: AbortSignal;
}

/** The per-item answer of a fenced write whose lease is no longer held: it changed nothing. */
export interface LeaseLostItem {
  id: number;
  ok: false;
  code: 'lease_lost';
}
/** Codes an item of a batch write can be refused with (the other items are still applied). */
export const ITEM_REFUSAL_CODES = ['lease_lost', 'forbidden', 'invalid_request', 'payload_too_large'] as const;
export type ItemRefusalCode = (typeof ITEM_REFUSAL_CODES)[number];
/**
 * One item not applied: `lease_lost` (not the live lease: changed nothing), `forbidden` (the job's
 * queue is not one the credential may touch: changed nothing), `invalid_request` /
 * `payload_too_large` (a value PostgreSQL cannot store; for complete and fail the job was ended
 * `failed`, non-retryable, when the lease held — `details.state` says so).
 */
export type ItemRefusal = { id: number; ok: false; code: ItemRefusalCode; message?: string; details?: unknown };

/** The per-item answer of a fenced write (complete, release): done, or refused (fenced off, …). */
export type LeaseOutcome = { id: number; ok: true } | ItemRefusal;
export type HeartbeatReply = { id: number; ok: true; cancelRequested: boolean } | ItemRefusal;
export type FailReply = { id: number; ok: true; state: JobState } | ItemRefusal;

/** The one way to build a lease_lost item (batch replies, fake transports). */
export function leaseLostItem(id: number): LeaseLostItem {
  return { id, ok: false, code: 'lease_lost' };
}

export interface ChildJob {
  queue: string;
  task: string;
  payload?: unknown;
  priority?: number;
  delayMs?: number;
  maxAttempts?: number;
}

/**
 * How an executor talks to the control plane. Two implementations share it: in-process (role
 * all: packages/api's ControlPlane) and HTTP (role worker: packages/worker's HttpTransport, over
 * the routes and schemas of internal-api.ts). Methods that concern one job throw
 * `leaseLost(id)` (DispatchError 'lease_lost') when the lease is no longer held; complete, fail
 * and the batch methods report per item. Every implementation must pass the conformance suite
 * (packages/api/src/conformance/).
 */
export interface Transport {
  dequeue(req: DequeueRequest): Promise<ClaimedJob[]>;
  heartbeat(items: LeaseRef[]): Promise<HeartbeatReply[]>;
  complete(item: LeaseRef & { result?: unknown }): Promise<LeaseOutcome>;
  fail(item: LeaseRef & { error: JobError; retryable: boolean }): Promise<FailReply>;
  /** Back to queued without spending an attempt (graceful shutdown). */
  release(items: LeaseRef[]): Promise<LeaseOutcome[]>;
  /** Checkpointed steps of the job (name → result). */
  loadSteps(ref: LeaseRef): Promise<Record<string, unknown>>;
  saveStep(ref: LeaseRef & { name: string; result: unknown }): Promise<void>;
  progress(ref: LeaseRef & { data: unknown }): Promise<void>;
  /** Enqueues a child job; `key` makes it idempotent per parent (e.g. the step name). */
  enqueueChild(ref: LeaseRef & { key: string; job: ChildJob }): Promise<{ jobId: number; created: boolean }>;
  close?(): Promise<void>;
}
