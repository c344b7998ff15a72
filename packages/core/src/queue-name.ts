import { z } from 'zod';
import { invalidRequest } from './errors.js';

/**
 * Queue and task names: lowercase letters, digits, `.`, `_`, `-`; 1–64 characters, starting with
 * a letter or digit. Strict so that names are safe in URLs, metrics labels and NOTIFY payloads.
 */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export const queueNameSchema = z.string().regex(NAME_PATTERN, {
  message: 'must match ^[a-z0-9][a-z0-9._-]{0,63}$ (lowercase letters, digits, ".", "_", "-")',
});

export function isValidQueueName(name: string): boolean {
  return NAME_PATTERN.test(name);
}

/** Throws `invalid_request` unless `name` is a valid queue name. */
export function assertQueueName(name: string): string {
  if (!isValidQueueName(name)) {
    throw invalidRequest(`invalid queue name ${JSON.stringify(name).slice(0, 80)}`, { name, pattern: NAME_PATTERN.source });
  }
  return name;
}
