/**
 * The public API, called from the same origin with the key in a header. The key lives in
 * sessionStorage (this tab, until it closes) and never in a URL or localStorage: URLs end up in
 * history, logs and Referer headers; localStorage outlives the session.
 */
const KEY_SLOT = 'pgdispatch.apiKey';

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details?: unknown) {
    super(message);
  }
}

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_SLOT);
}

export function storeKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY_SLOT, key);
  else sessionStorage.removeItem(KEY_SLOT);
}

export function authHeaders(): Record<string, string> {
  const key = storedKey();
  return key ? { authorization: `Bearer ${key}` } : {};
}

export async function api<T>(path: string, opts: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...authHeaders() };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method: opts.method ?? 'GET',
    headers,
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    credentials: 'omit',
    cache: 'no-store',
  });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(res.status, 'invalid_response', `unexpected response from ${path} (${res.status})`);
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string; details?: unknown } } | null)?.error;
    throw new ApiError(res.status, e?.code ?? 'http_error', e?.message ?? `HTTP ${res.status}`, e?.details);
  }
  return body as T;
}

export type JobState = 'queued' | 'running' | 'succeeded' | 'retry_waiting' | 'failed' | 'cancelled';
export const JOB_STATES: JobState[] = ['queued', 'running', 'retry_waiting', 'succeeded', 'failed', 'cancelled'];
export const FINAL_STATES: JobState[] = ['succeeded', 'failed', 'cancelled'];

export interface Job {
  id: number;
  queue: string;
  task: string;
  payload: unknown;
  state: JobState;
  priority: number;
  runAt: string;
  attempt: number;
  maxAttempts: number;
  cancelRequested: boolean;
  idempotencyKey: string | null;
  result: unknown;
  lastError: { message: string; name?: string; stack?: string; details?: unknown } | null;
  parentId: number | null;
  /** On a dead-lettered job: the queue it failed in (`queue` is then the dead-letter queue). */
  deadLetterFrom?: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  progress?: unknown;
}

export interface QueueOverview {
  name: string;
  paused: boolean;
  concurrencyLimit: number | null;
  /** Most claims per rateIntervalMs; null = no rate limit. */
  rateLimit: number | null;
  rateIntervalMs: number;
  counts: Record<JobState, number>;
  oldestWaitingSeconds: number;
  workersListening: boolean;
}

export interface Throughput {
  bucketSeconds: number;
  until: string;
  queues: Record<string, { succeeded: number[]; failed: number[] }>;
}

export interface Whoami {
  /** false: no key was sent and the server has keys configured. */
  authenticated: boolean;
  scopes: ('enqueue' | 'read' | 'admin')[];
  open: boolean;
}

export interface WorkerPresence {
  tier: 'in-process' | 'http';
  subject: string;
  queues: '*' | string[];
  /** Tasks it declared when asking for work (absent from servers without task routing). */
  tasks?: '*' | string[];
  lastSeenAt: string;
  waiting: boolean;
}

export interface Schedule {
  name: string;
  cron: string;
  timeZone: string;
  queue: string;
  task: string;
  payload: unknown;
  priority: number;
  maxAttempts: number | null;
  enabled: boolean;
  catchUp: 'all' | 'latest' | 'none';
  /** The next tick not yet fired (database time). */
  nextRunAt: string;
  lastTickAt: string | null;
  lastJobId: number | null;
}

/** The filter of `POST /v1/jobs/bulk/{retry,cancel}` (the Jobs list's filter). */
export interface BulkFilter {
  queue?: string;
  state?: JobState;
  task?: string;
  createdAfter?: string;
}
