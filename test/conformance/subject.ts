// What a conformance case sees of an implementation: the Transport under test plus a back door
// onto the job table behind it (what the public API or the lease reaper would do), so a case can
// set up a situation and check what the control plane recorded.
import type { Transport } from '@pgdispatch/core/transport';
import type { Job } from '@pgdispatch/core/types';

/**
 * The fields of a job a case may check, as the control plane records them (leaseExpiresAt is
 * null once the lease ended; lease tokens are never shown outside the claim).
 */
export type JobView = Pick<Job, 'id' | 'queue' | 'task' | 'payload' | 'state' | 'attempt' | 'leaseExpiresAt' | 'cancelRequested' | 'result' | 'lastError' | 'parentId'>;

/** One implementation under test; `start` builds a fresh subject for one run of every case. */
export interface SubjectFactory {
  /** Shown in the test names. */
  name: string;
  /** True when the job table behind it is the real PostgreSQL one (engine bugs show there, not in fakes). */
  postgres: boolean;
  start(): Promise<Subject>;
}

export interface Subject {
  readonly transport: Transport;
  /**
   * The same control plane reached with a worker credential for `queues` only (a JWT over HTTP,
   * the scoped control plane in-process): every write about a job elsewhere must be `forbidden`.
   */
  scoped(queues: string[]): Promise<Transport>;
  /** Enqueues a job, claimable at once (the public enqueue path). */
  enqueue(job: { queue: string; task?: string; payload?: unknown; maxAttempts?: number }): Promise<number>;
  /** The job as recorded now. */
  job(id: number): Promise<JobView>;
  /** The public API's cancel: waiting → cancelled, running → cancel requested. */
  cancel(id: number): Promise<void>;
  /** The lease runs out and the reaper takes the job back (a spent attempt), as after a worker crash. */
  expireLease(id: number): Promise<void>;
  close(): Promise<void>;
}

/** Per case: queue names no other case uses, so cases never see each other's jobs. */
export interface CaseContext {
  queue: string;
  otherQueue: string;
}

export interface ConformanceCase {
  name: string;
  run(s: Subject, ctx: CaseContext): Promise<void>;
  /**
   * Set when the case exposes a known engine bug: it runs as `it.fails` against the PostgreSQL
   * subjects (the fake must pass it). Remove the field in the change that fixes the bug.
   */
  knownEngineBug?: string;
}
