import { describe, expect, it } from 'vitest';
import { DispatchError } from './errors.js';
import { NAME_PATTERN, assertQueueName, isValidQueueName, queueNameSchema } from './queue-name.js';

const valid = ['a', '0', 'emails', 'billing.invoices', 'etl_2024-q1', 'x'.repeat(64)];
const invalid = ['', 'A', 'Emails', 'a b', '../x', '.hidden', '-x', '_x', 'x/y', 'x'.repeat(65), 'ümlaut', 'a\nb', 'a;drop table jobs', '*', ' a'];

describe('queue names', () => {
  it.each(valid)('%j is valid', (name) => {
    expect(isValidQueueName(name)).toBe(true);
    expect(assertQueueName(name)).toBe(name);
    expect(queueNameSchema.safeParse(name).success).toBe(true);
  });

  it.each(invalid)('%j is invalid_request', (name) => {
    expect(isValidQueueName(name)).toBe(false);
    expect(queueNameSchema.safeParse(name).success).toBe(false);
    let thrown: unknown;
    try {
      assertQueueName(name);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(DispatchError);
    expect((thrown as DispatchError).code).toBe('invalid_request');
    expect((thrown as DispatchError).details).toEqual({ name, pattern: NAME_PATTERN.source });
  });

  it('keeps the error message short for huge names', () => {
    expect(() => assertQueueName('X'.repeat(10_000))).toThrow(/^.{0,120}$/);
  });
});
