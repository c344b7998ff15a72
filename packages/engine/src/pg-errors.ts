import { DispatchError } from '@pgdispatch/core/errors';

/** The one place that reads Postgres error codes and maps them to DispatchError codes. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT']);

export function toDispatchError(err: unknown): DispatchError {
  if (err instanceof DispatchError) return err;
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  const message = err instanceof Error ? err.message : String(err);
  if (CONNECTION_CODES.has(code) || code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') {
    return new DispatchError('unavailable', 'database unavailable', { cause: err, details: { reason: code || message } });
  }
  // 57014: cancelled by statement_timeout; 25P03: idle_in_transaction_session_timeout ended the
  // session. Both mean "try again", not "your request was wrong".
  if (code === '57014' || code === '25P03') {
    return new DispatchError('unavailable', 'database statement timed out, retry', { cause: err, retryable: true, details: { reason: code } });
  }
  if (code === '40001' || code === '40P01') {
    return new DispatchError('unavailable', 'transaction conflict, retry', { cause: err, retryable: true, details: { reason: code } });
  }
  if (code === '23505') return new DispatchError('conflict', 'already exists', { cause: err });
  // 22P05 (\u0000 in jsonb), 22021 (NUL in text), 54001 (JSON too deep): values are checked before
  // statements (core/storable.ts); this is the backstop, so a miss is a 400, never a 500.
  if (code === '22P02' || code === '22003' || code === '22007' || code === '22008' || code === '23514' || code === '22P05' || code === '22021' || code === '54001') {
    return new DispatchError('invalid_request', message, { cause: err });
  }
  return new DispatchError('internal', 'internal database error', { cause: err });
}

/**
 * Whether `err` (a Postgres error, or the DispatchError `pg()` made of one) is 55P03: a statement
 * gave up waiting for a lock after its `lock_timeout`.
 */
export function isLockTimeout(err: unknown): boolean {
  const raw = err instanceof DispatchError ? err.cause : err;
  return typeof raw === 'object' && raw !== null && 'code' in raw && (raw as { code: unknown }).code === '55P03';
}

/** Awaits `p`, turning any Postgres error into a DispatchError. */
export async function pg<T>(p: Promise<T> | PromiseLike<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw toDispatchError(err);
  }
}
