import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DispatchError } from '@pgdispatch/core/errors';
import { declaresNonRetryable, NonRetryableError } from './errors.js';
import { toJobError } from './json.js';
import { defineTask, TaskRegistry } from './task.js';

describe('defineTask and TaskRegistry', () => {
  const a = defineTask({ name: 'a', payload: z.object({ n: z.number() }), handler: ({ n }) => n + 1 });

  it('rejects bad definitions', () => {
    expect(() => defineTask({ name: 'has space', payload: z.unknown(), handler: () => 1 })).toThrow(/must match/);
    expect(() => defineTask({ name: 'x', payload: {} as z.ZodType, handler: () => 1 })).toThrow(/zod schema/);
  });

  it('rejects a duplicate name', () => {
    const reg = new TaskRegistry([a]);
    expect(() => reg.register(defineTask({ name: 'a', payload: z.unknown(), handler: () => 2 }))).toThrow(/defined twice/);
    expect(reg.get('a')).toBe(a);
    expect(reg.names()).toEqual(['a']);
  });
});

describe('retry classification', () => {
  it('treats NonRetryableError, retryable:false and malformed-request DispatchErrors as final', () => {
    expect(declaresNonRetryable(new NonRetryableError('x'))).toBe(true);
    expect(declaresNonRetryable(Object.assign(new Error('x'), { retryable: false }))).toBe(true);
    expect(declaresNonRetryable(new DispatchError('invalid_request', 'bad child'))).toBe(true);
    expect(declaresNonRetryable(new DispatchError('internal', 'api 500'))).toBe(false);
    expect(declaresNonRetryable(new Error('x'))).toBe(false);
    expect(declaresNonRetryable('a string')).toBe(false);
  });

  it('serializes thrown values into a bounded JobError', () => {
    expect(toJobError('plain', true)).toEqual({ message: 'plain', retryable: true });
    const e = toJobError(new NonRetryableError('m'.repeat(10_000), { details: { at: new Date(0) } }), false);
    expect(e.message.length).toBe(8_192);
    expect(e).toMatchObject({ name: 'NonRetryableError', details: { at: '1970-01-01T00:00:00.000Z' }, retryable: false });
  });
});
