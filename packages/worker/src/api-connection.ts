/**
 * What the worker knows about its link to the control plane, from the outcome of its dequeues:
 * the fact behind a worker's readiness. A worker whose credential is refused or which cannot
 * reach the api is not ready, and says why, instead of answering `ready` while it logs errors.
 */
import { isDispatchError } from '@pgdispatch/core/errors';

export type ApiConnectionState = 'connecting' | 'ok' | 'credential_refused' | 'unreachable' | 'error';

export interface ApiConnection {
  state: ApiConnectionState;
  /** Why the state is not `ok` (the api's message, or the network error). */
  reason?: string;
  /** When the state last changed (ISO). */
  since: string;
}

export class ApiConnectionTracker {
  #current: ApiConnection = { state: 'connecting', since: new Date().toISOString() };

  /** A dequeue was answered (with jobs or without). */
  ok(): void {
    if (this.#current.state !== 'ok') this.#current = { state: 'ok', since: new Date().toISOString() };
  }

  /** A dequeue failed (after the transport's own retries). */
  failed(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    const state: ApiConnectionState =
      isDispatchError(err, 'unauthorized') || isDispatchError(err, 'forbidden') ? 'credential_refused' : isDispatchError(err, 'unavailable') ? 'unreachable' : 'error';
    const reason =
      state === 'credential_refused' ? `the api refused this worker's credential: ${message}` : state === 'unreachable' ? `cannot reach the api: ${message}` : `dequeue failed: ${message}`;
    const since = this.#current.state === state ? this.#current.since : new Date().toISOString();
    this.#current = { state, reason, since };
  }

  get(): ApiConnection {
    return { ...this.#current };
  }
}
