import { describe, expect, it } from 'vitest';
import { DispatchError, ERROR_CODES, invalidRequest, isDispatchError, notFound } from './errors.js';

describe('DispatchError', () => {
  it('carries a stable code, message, details and cause', () => {
    const cause = new Error('root');
    const err = new DispatchError('conflict', 'already exists', { details: { id: 1 }, cause });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('DispatchError');
    expect(err.code).toBe('conflict');
    expect(err.message).toBe('already exists');
    expect(err.details).toEqual({ id: 1 });
    expect(err.cause).toBe(cause);
  });

  it('is retryable by default only when unavailable', () => {
    for (const code of ERROR_CODES) expect(new DispatchError(code, 'x').retryable).toBe(code === 'unavailable');
    expect(new DispatchError('conflict', 'x', { retryable: true }).retryable).toBe(true);
    expect(new DispatchError('unavailable', 'x', { retryable: false }).retryable).toBe(false);
  });

  it('serialises to the API error shape, leaving out absent details', () => {
    expect(JSON.parse(JSON.stringify(new DispatchError('lease_lost', 'gone')))).toEqual({ code: 'lease_lost', message: 'gone' });
    expect(new DispatchError('invalid_state', 'no', { details: { state: 'running' } }).toJSON()).toEqual({
      code: 'invalid_state',
      message: 'no',
      details: { state: 'running' },
    });
  });

  it('has no cause property when none is given', () => {
    expect('cause' in new DispatchError('internal', 'x')).toBe(false);
  });

  it('isDispatchError checks the type and optionally the code', () => {
    const err = new DispatchError('not_found', 'x');
    expect(isDispatchError(err)).toBe(true);
    expect(isDispatchError(err, 'not_found')).toBe(true);
    expect(isDispatchError(err, 'conflict')).toBe(false);
    expect(isDispatchError(new Error('x'))).toBe(false);
    expect(isDispatchError({ code: 'not_found' })).toBe(false);
  });

  it('helpers build invalid_request and not_found', () => {
    expect(invalidRequest('bad', { f: 1 })).toMatchObject({ code: 'invalid_request', message: 'bad', details: { f: 1 } });
    expect(notFound('job', 7)).toMatchObject({ code: 'not_found', message: 'job 7 not found', details: { job: 7 } });
  });

  it('the code list holds every code the issue names', () => {
    for (const c of ['invalid_request', 'not_found', 'lease_lost', 'invalid_state', 'conflict', 'unavailable', 'payload_too_large']) {
      expect(ERROR_CODES).toContain(c);
    }
  });
});
