import { timingSafeEqual } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import { DispatchError } from '@pgdispatch/core/errors';
import type { WorkerKey } from '@pgdispatch/core/config';

/** What a worker credential allows: the queues it may pull and act on. */
export interface WorkerIdentity {
  subject: string;
  queues: '*' | string[];
}

const ISSUER = 'pgdispatch';
const AUDIENCE = 'pgdispatch-worker';

/** Mints an HS256 worker JWT with `exp` and the queues it may pull. */
export async function mintWorkerToken(opts: { secret: string; queues: '*' | string[]; ttlSeconds: number; subject?: string }): Promise<string> {
  return new SignJWT({ queues: opts.queues })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(opts.subject ?? 'worker')
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + opts.ttlSeconds)
    .sign(new TextEncoder().encode(opts.secret));
}

/** Compares two secrets in constant time (for equal lengths; a length difference is not secret). */
export function secretsEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/**
 * Verifies a worker credential: a static WORKER_KEYS secret, or a JWT signed with the token
 * secret (exp required). Anything else is `unauthorized`.
 */
export async function verifyWorkerToken(token: string, opts: { secret?: string; keys: readonly WorkerKey[] }): Promise<WorkerIdentity> {
  for (const k of opts.keys) if (secretsEqual(token, k.secret)) return { subject: 'worker-key', queues: k.queues };
  if (!opts.secret || token.split('.').length !== 3) throw new DispatchError('unauthorized', 'invalid worker credential');
  try {
    const { payload } = await jwtVerify(token, new TextEncoder().encode(opts.secret), {
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ['HS256'],
      requiredClaims: ['exp'],
    });
    const q = payload.queues;
    const queues = q === '*' ? '*' : Array.isArray(q) && q.every((x) => typeof x === 'string') ? (q as string[]) : null;
    if (queues === null) throw new Error('queues claim missing');
    return { subject: payload.sub ?? 'worker', queues };
  } catch (err) {
    const expired = err instanceof Error && 'code' in err && (err as { code: string }).code === 'ERR_JWT_EXPIRED';
    throw new DispatchError('unauthorized', expired ? 'worker token expired' : 'invalid worker token');
  }
}

/** The queues a worker may pull: its request intersected with its credential. */
export function allowedQueues(identity: WorkerIdentity, requested: '*' | string[]): '*' | string[] {
  if (identity.queues === '*') return requested;
  if (requested === '*') return identity.queues;
  const allowed = new Set(identity.queues);
  const denied = requested.filter((q) => !allowed.has(q));
  if (denied.length > 0) throw new DispatchError('forbidden', `this worker credential may not pull ${denied.join(', ')}`, { details: { denied } });
  return requested;
}
