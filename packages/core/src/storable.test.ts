import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, stringProblem, toStorableJson, unstorableText } from './storable.js';

describe('storable values', () => {
  it('accepts what PostgreSQL stores as given, including paired surrogates and an escaped backslash before u0000', () => {
    for (const v of [null, 1, 'plain', '😀', { a: ['b', { c: 'd' }] }, '\\u0000 is text here']) expect(toStorableJson(v, 'v')).toEqual({ json: JSON.stringify(v) });
    expect(toStorableJson(undefined, 'v')).toEqual({ json: 'null' });
  });

  it('names the field and the problem, never the value', () => {
    expect(toStorableJson({ body: ['ok', 'x\u0000'] }, 'result')).toEqual({
      bad: { code: 'invalid_request', field: 'result.body[1]', problem: 'contains U+0000 (NUL) at offset 1, which PostgreSQL cannot store' },
    });
    expect(toStorableJson({ 'a b': '\udc00' }, 'result')).toMatchObject({ bad: { field: 'result["a b"]', problem: expect.stringContaining('lone surrogate U+DC00 at offset 0') } });
    expect(toStorableJson({ ['\u0000']: 1 }, 'payload')).toMatchObject({ bad: { field: 'payload (a key)' } });
    expect(unstorableText('ab\ud83d', 'task')).toMatchObject({ field: 'task', problem: expect.stringContaining('U+D83D at offset 2') });
    expect(stringProblem('ok')).toBeNull();
  });

  it('refuses nesting past MAX_JSON_DEPTH, non-JSON values and oversized ones', () => {
    let deep: unknown = 0;
    for (let i = 0; i < MAX_JSON_DEPTH; i++) deep = [deep];
    expect(toStorableJson(deep, 'r')).toHaveProperty('json');
    expect(toStorableJson([deep], 'r')).toMatchObject({ bad: { problem: `is nested deeper than ${MAX_JSON_DEPTH} levels` } });
    expect(toStorableJson(10n, 'r')).toMatchObject({ bad: { code: 'invalid_request', problem: 'is not JSON-serialisable' } });
    expect(toStorableJson('x'.repeat(11), 'r', 12)).toMatchObject({ bad: { code: 'payload_too_large', problem: 'is 13 bytes, the limit is 12' } });
  });
});
