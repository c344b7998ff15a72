import { describe, expect, it } from 'vitest';
import { DispatchError } from '@pgdispatch/core/errors';
import { isLockTimeout, pg, toDispatchError } from './pg-errors.js';

const pgErr = (code: string, message = 'boom') => Object.assign(new Error(message), { code });

describe('toDispatchError', () => {
  it.each(['ECONNREFUSED', 'ECONNRESET', 'CONNECTION_CLOSED', 'CONNECT_TIMEOUT', '08006', '57P01', '57P03', '53300'])('%s → unavailable, retryable', (code) => {
    const err = toDispatchError(pgErr(code));
    expect(err).toMatchObject({ code: 'unavailable', retryable: true });
  });

  it.each(['40001', '40P01', '57014', '25P03'])('%s (serialization/deadlock/timeout) → unavailable, retryable', (code) => {
    expect(toDispatchError(pgErr(code))).toMatchObject({ code: 'unavailable', retryable: true });
  });

  it('23505 → conflict', () => {
    expect(toDispatchError(pgErr('23505')).code).toBe('conflict');
  });

  it.each(['22P02', '22003', '22007', '22008', '23514'])('%s (bad value) → invalid_request with the message', (code) => {
    expect(toDispatchError(pgErr(code, 'invalid input syntax'))).toMatchObject({ code: 'invalid_request', message: 'invalid input syntax' });
  });

  it('anything else → internal, keeping the cause and hiding the message', () => {
    const cause = pgErr('42P01', 'relation "secret" does not exist');
    const err = toDispatchError(cause);
    expect(err).toMatchObject({ code: 'internal', message: 'internal database error' });
    expect(err.cause).toBe(cause);
    expect(toDispatchError('a string').code).toBe('internal');
  });

  it('passes a DispatchError through unchanged', () => {
    const err = new DispatchError('lease_lost', 'gone');
    expect(toDispatchError(err)).toBe(err);
  });

  it('pg() rethrows as DispatchError and passes values through', async () => {
    expect(await pg(Promise.resolve(5))).toBe(5);
    await expect(pg(Promise.reject(pgErr('23505')))).rejects.toMatchObject({ code: 'conflict' });
  });
});

describe('isLockTimeout', () => {
  it('recognises 55P03, raw or wrapped by pg(), and nothing else', async () => {
    const raw = Object.assign(new Error('canceling statement due to lock timeout'), { code: '55P03' });
    expect(isLockTimeout(raw)).toBe(true);
    const wrapped = await pg(Promise.reject(raw)).catch((e: unknown) => e);
    expect(wrapped).toBeInstanceOf(DispatchError);
    expect(isLockTimeout(wrapped)).toBe(true);
    expect(isLockTimeout(Object.assign(new Error('timeout'), { code: '57014' }))).toBe(false);
    expect(isLockTimeout(new DispatchError('internal', 'x'))).toBe(false);
    expect(isLockTimeout(null)).toBe(false);
  });
});
