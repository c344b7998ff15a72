/**
 * What PostgreSQL refuses to store, checked before a statement is sent so that one bad item is
 * answered for itself instead of failing the whole batch (a failed statement takes every item
 * with it). PostgreSQL refuses:
 * - `\u0000` anywhere in a jsonb string or key (22P05 "unsupported Unicode escape sequence");
 * - a NUL character in a text value (22021);
 * - a lone UTF-16 surrogate in jsonb (`"\ud800"`: 22P02); in a text value postgres.js would
 *   silently store U+FFFD instead, so we refuse that too rather than corrupt it;
 * - JSON nested deeper than its stack allows (54001 "stack depth limit exceeded": 100,000
 *   levels failed with the default max_stack_depth of 2 MB, 3,000 were stored).
 */

import type { JobError } from './types.js';

/** Deepest JSON nesting accepted (arrays and objects), well under PostgreSQL's stack limit. */
export const MAX_JSON_DEPTH = 1_000;

export interface Unstorable {
  /** Where the bad value is, e.g. `result.body[3]` or `error.message`. */
  field: string;
  /** What is wrong with it, in words (never the value itself). */
  problem: string;
}

const NUL = '\u0000';
// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// JSON.stringify escapes NUL as \u0000 and lone surrogates as \udXXX: a cheap pre-test on the
// serialized text (it may also match an escaped backslash followed by "u0000", hence the walk).
const SUSPECT_JSON = /\\u0000|\\ud[89a-f]/i;

/** Why a string cannot be stored as text or inside jsonb, or null when it can. */
export function stringProblem(s: string): string | null {
  const nul = s.indexOf(NUL);
  if (nul >= 0) return `contains U+0000 (NUL) at offset ${nul}, which PostgreSQL cannot store`;
  const m = LONE_SURROGATE.exec(s);
  if (m) return `contains a lone surrogate U+${m[0].charCodeAt(0).toString(16).toUpperCase()} at offset ${m.index}, which is not valid Unicode`;
  return null;
}

/** Checks a text value (task names, keys, step names). */
export function unstorableText(value: string, field: string): Unstorable | null {
  const problem = stringProblem(value);
  return problem === null ? null : { field, problem };
}

/**
 * Checks serialized JSON (what `JSON.stringify` produced, so `toJSON` and dropped keys are as
 * stored). The common case costs one regex scan of the text; only a suspect text, or one long
 * enough to be deep, is parsed and walked to name the field.
 */
export function unstorableJson(json: string, field: string): Unstorable | null {
  if (!SUSPECT_JSON.test(json) && json.length < MAX_JSON_DEPTH) return null;
  return walk(JSON.parse(json) as unknown, field, 0);
}

function walk(v: unknown, path: string, depth: number): Unstorable | null {
  if (typeof v === 'string') {
    const problem = stringProblem(v);
    return problem === null ? null : { field: path, problem };
  }
  if (v === null || typeof v !== 'object') return null;
  if (depth >= MAX_JSON_DEPTH) return { field: path, problem: `is nested deeper than ${MAX_JSON_DEPTH} levels` };
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const bad = walk(v[i], `${path}[${i}]`, depth + 1);
      if (bad) return bad;
    }
    return null;
  }
  for (const [k, child] of Object.entries(v)) {
    const keyProblem = stringProblem(k);
    if (keyProblem !== null) return { field: `${path} (a key)`, problem: keyProblem };
    const bad = walk(child, /^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`, depth + 1);
    if (bad) return bad;
  }
  return null;
}

/**
 * Serializes a value bound for a jsonb column: `{ json }` when PostgreSQL will store it, or the
 * reason it will not (not serialisable, unstorable characters, too deep, too large).
 */
export function toStorableJson(
  value: unknown,
  field: string,
  maxBytes = Number.POSITIVE_INFINITY,
): { json: string } | { bad: Unstorable & { code: 'invalid_request' | 'payload_too_large' } } {
  let json: string | undefined;
  try {
    json = JSON.stringify(value === undefined ? null : value);
  } catch {
    // BigInt, circular structures, or nesting deeper than V8's own stack.
    return { bad: { code: 'invalid_request', field, problem: 'is not JSON-serialisable' } };
  }
  if (json === undefined) return { bad: { code: 'invalid_request', field, problem: 'is not JSON' } };
  if (maxBytes !== Number.POSITIVE_INFINITY) {
    const bytes = Buffer.byteLength(json);
    if (bytes > maxBytes) return { bad: { code: 'payload_too_large', field, problem: `is ${bytes} bytes, the limit is ${maxBytes}` } };
  }
  const bad = unstorableJson(json, field);
  return bad ? { bad: { code: 'invalid_request', ...bad } } : { json };
}

/**
 * The error recorded in place of a result or error that could not be stored: says which field
 * held what (docs/architecture.md §4.1). The job ends failed, non-retryable: a re-run would most
 * likely produce the same value again.
 */
export function unstorableError(what: 'result' | 'error', bad: Unstorable): JobError {
  return {
    name: what === 'result' ? 'UnstorableResult' : 'UnstorableError',
    message: `the job's ${what} could not be stored: ${bad.field} ${bad.problem}`,
    details: { field: bad.field, problem: bad.problem },
  };
}
