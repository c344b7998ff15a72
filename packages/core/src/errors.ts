/** Stable error codes; the api maps each to one HTTP status in a single place. */
export const ERROR_CODES = [
  'invalid_request',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'lease_lost',
  'invalid_state',
  'payload_too_large',
  'unavailable',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * The one mapping from error codes to HTTP statuses: the api answers with it, the clients read
 * a status without a JSON error body back through `codeForStatus`.
 */
export const HTTP_STATUS_BY_CODE = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  lease_lost: 409,
  invalid_state: 409,
  payload_too_large: 413,
  unavailable: 503,
  internal: 500,
} as const satisfies Record<ErrorCode, number>;

/**
 * The code of a status whose response carried no readable error body (a proxy's page): the first
 * code mapped to it (409 → conflict), else internal for 5xx and invalid_request otherwise.
 */
export function codeForStatus(status: number): ErrorCode {
  const code = ERROR_CODES.find((c) => HTTP_STATUS_BY_CODE[c] === status);
  return code ?? (status >= 500 ? 'internal' : 'invalid_request');
}

/** The one error type of pgdispatch: a stable `code`, a human message, optional details. */
export class DispatchError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  /** Set on `unavailable`: whether the operation may be retried as is. */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, opts: { details?: unknown; cause?: unknown; retryable?: boolean } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DispatchError';
    this.code = code;
    this.details = opts.details;
    this.retryable = opts.retryable ?? code === 'unavailable';
  }

  toJSON(): { code: ErrorCode; message: string; details?: unknown } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export function isDispatchError(err: unknown, code?: ErrorCode): err is DispatchError {
  return err instanceof DispatchError && (code === undefined || err.code === code);
}

export const invalidRequest = (message: string, details?: unknown) =>
  new DispatchError('invalid_request', message, { details });
export const notFound = (what: string, id: string | number) =>
  new DispatchError('not_found', `${what} ${id} not found`, { details: { [what]: id } });
/** The one lease_lost error: a holder's write named a lease token the job no longer has. */
export const leaseLost = (id: number) => new DispatchError('lease_lost', `lease on job ${id} is no longer held`, { details: { id } });
