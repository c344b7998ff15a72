import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DispatchError, type ErrorCode } from '@pgdispatch/core/errors';
import { createTestDatabase, useTestDatabase, type TestDatabase } from '../testing/database.js';
import { jobClaim } from './job-claim.js';
import { jobEnqueue, jobEnqueueMany, type EnqueueItem } from './job-enqueue.js';
import { queueUpsert } from './queue-admin.js';

const db = useTestDatabase();

const dbNow = async () => (await db.sql<{ now: Date }[]>`select now()`)[0]!.now.getTime();
const rowCounts = async () => (await db.sql<{ jobs: number; queues: number }[]>`
  select (select count(*)::int from jobs) as jobs, (select count(*)::int from queues) as queues`)[0]!;

describe('jobEnqueue', () => {
  it('writes a queued job with defaults and registers its queue', async () => {
    const { job, created } = await jobEnqueue(db.sql, { queue: 'emails', task: 'send', payload: { to: 'a@b.c' } });
    expect(created).toBe(true);
    expect(job).toMatchObject({
      queue: 'emails', task: 'send', payload: { to: 'a@b.c' }, state: 'queued', priority: 0, attempt: 0, maxAttempts: 5,
      cancelRequested: false, idempotencyKey: null, result: null, lastError: null, parentId: null, finishedAt: null,
    });
    expect(job).not.toHaveProperty('leaseToken');
    expect(typeof job.id).toBe('number');
    const [q] = await db.sql`select name, paused, concurrency_limit from queues where name = 'emails'`;
    expect(q).toEqual({ name: 'emails', paused: false, concurrency_limit: null });
  });

  it('defaults the payload to {} and keeps any JSON value', async () => {
    expect((await jobEnqueue(db.sql, { queue: 'payloads', task: 't' })).job.payload).toEqual({});
    for (const payload of [[1, 'two', null], 'text', 42, true, { nested: { deep: ['x'] } }]) {
      expect((await jobEnqueue(db.sql, { queue: 'payloads', task: 't', payload })).job.payload).toEqual(payload);
    }
  });

  it('takes max_attempts from the queue default unless given', async () => {
    await queueUpsert(db.sql, { name: 'attempts', defaultMaxAttempts: 2 });
    expect((await jobEnqueue(db.sql, { queue: 'attempts', task: 't' })).job.maxAttempts).toBe(2);
    expect((await jobEnqueue(db.sql, { queue: 'attempts', task: 't', maxAttempts: 9 })).job.maxAttempts).toBe(9);
  });

  it('delays run_at from the database clock; an absolute runAt wins', async () => {
    const before = await dbNow();
    const { job } = await jobEnqueue(db.sql, { queue: 'delayed', task: 't', delayMs: 60_000 });
    const after = await dbNow();
    expect(job.runAt.getTime()).toBeGreaterThanOrEqual(before + 60_000);
    expect(job.runAt.getTime()).toBeLessThanOrEqual(after + 60_000);
    const at = new Date(Date.UTC(2030, 0, 1));
    expect((await jobEnqueue(db.sql, { queue: 'delayed', task: 't', runAt: at, delayMs: 5 })).job.runAt).toEqual(at);
    expect(await jobClaim(db.sql, { queues: ['delayed'], limit: 10, leaseMs: 30_000 })).toEqual([]);
  });

  it('keeps priority and parent id', async () => {
    const parent = (await jobEnqueue(db.sql, { queue: 'family', task: 'p' })).job;
    const { job } = await jobEnqueue(db.sql, { queue: 'family', task: 'c', priority: -7, parentId: parent.id });
    expect(job).toMatchObject({ priority: -7, parentId: parent.id });
  });
});

describe('jobEnqueueMany', () => {
  it('enqueues a batch in one statement, answering in input order', async () => {
    const items: EnqueueItem[] = Array.from({ length: 50 }, (_, i) => ({ queue: i % 2 ? 'batch-a' : 'batch-b', task: 't', payload: { i } }));
    const res = await jobEnqueueMany(db.sql, { items });
    expect(res.map((r) => r.job.payload)).toEqual(items.map((i) => i.payload));
    expect(res.map((r) => r.job.queue)).toEqual(items.map((i) => i.queue));
    expect(res.every((r) => r.created)).toBe(true);
    expect(await jobEnqueueMany(db.sql, { items: [] })).toEqual([]);
  });

  it('mixes keyed and keyless items, repeats of a key in one batch, and keys that already exist', async () => {
    const first = await jobEnqueue(db.sql, { queue: 'mixed', task: 't', idempotencyKey: 'old' });
    const res = await jobEnqueueMany(db.sql, {
      items: [
        { queue: 'mixed', task: 't', payload: 1 },
        { queue: 'mixed', task: 't', idempotencyKey: 'new' },
        { queue: 'mixed', task: 't', idempotencyKey: 'old' },
        { queue: 'mixed', task: 't', payload: 2 },
        { queue: 'mixed', task: 't', idempotencyKey: 'new' },
        { queue: 'mixed-2', task: 't', idempotencyKey: 'new' },
      ],
    });
    expect(res.map((r) => r.created)).toEqual([true, true, false, true, false, true]);
    expect(res[2]!.job.id).toBe(first.job.id);
    expect(res[4]!.job.id).toBe(res[1]!.job.id);
    expect(res[5]!.job.id).not.toBe(res[1]!.job.id);
    expect([res[0]!.job.payload, res[3]!.job.payload]).toEqual([1, 2]);
  });

  it('rejects more than 10,000 items', async () => {
    const items = Array.from({ length: 10_001 }, () => ({ queue: 'huge', task: 't' }));
    await expect(jobEnqueueMany(db.sql, { items })).rejects.toMatchObject({ code: 'invalid_request' });
  });
});

describe('idempotent enqueue', () => {
  it('a second enqueue with the same key returns the first job (created: false)', async () => {
    const a = await jobEnqueue(db.sql, { queue: 'idem', task: 't', idempotencyKey: 'k1', payload: { v: 1 } });
    const b = await jobEnqueue(db.sql, { queue: 'idem', task: 't', idempotencyKey: 'k1', payload: { v: 2 } });
    expect(a.created).toBe(true);
    expect(b).toEqual({ job: a.job, created: false });
  });

  it.each([
    ['an existing queue', true],
    ['a queue created by the enqueue itself', false],
  ])('20 concurrent enqueues of one key on %s create exactly one job', async (_label, precreate) => {
    const queue = precreate ? 'idem-race' : 'idem-race-new';
    if (precreate) await queueUpsert(db.sql, { name: queue });
    const pools = Array.from({ length: 20 }, () => db.connect(1));
    await Promise.all(pools.map((p) => p`select 1`)); // connect first so the enqueues start together
    const results = await Promise.all(pools.map((p, i) => jobEnqueue(p, { queue, task: 't', idempotencyKey: 'same', payload: { i } })));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(results.filter((r) => !r.created)).toHaveLength(19);
    expect(new Set(results.map((r) => r.job.id)).size).toBe(1);
    const [n] = await db.sql`select count(*)::int as n from jobs where queue = ${queue}`;
    expect(n!.n).toBe(1);
  });

  it('scopes keys per queue', async () => {
    const a = await jobEnqueue(db.sql, { queue: 'idem-x', task: 't', idempotencyKey: 'shared' });
    const b = await jobEnqueue(db.sql, { queue: 'idem-y', task: 't', idempotencyKey: 'shared' });
    expect(a.created && b.created).toBe(true);
    expect(a.job.id).not.toBe(b.job.id);
  });
});

describe('bad input is a typed error and writes nothing', () => {
  const cases: [string, EnqueueItem, ErrorCode, number?][] = [
    ['queue ../x', { queue: '../x', task: 't' }, 'invalid_request'],
    ['queue "a b"', { queue: 'a b', task: 't' }, 'invalid_request'],
    ['queue A', { queue: 'A', task: 't' }, 'invalid_request'],
    ['a 65-character queue', { queue: 'q'.repeat(65), task: 't' }, 'invalid_request'],
    ['an empty queue', { queue: '', task: 't' }, 'invalid_request'],
    ['queue with SQL', { queue: "x'); drop table jobs; --", task: 't' }, 'invalid_request'],
    ['an empty task', { queue: 'ok', task: '' }, 'invalid_request'],
    ['a 129-character task', { queue: 'ok', task: 't'.repeat(129) }, 'invalid_request'],
    ['a payload over maxPayloadBytes', { queue: 'ok', task: 't', payload: { s: 'x'.repeat(200) } }, 'payload_too_large', 100],
    ['a negative delayMs', { queue: 'ok', task: 't', delayMs: -1 }, 'invalid_request'],
    ['an infinite delayMs', { queue: 'ok', task: 't', delayMs: Number.POSITIVE_INFINITY }, 'invalid_request'],
    ['a NaN delayMs', { queue: 'ok', task: 't', delayMs: Number.NaN }, 'invalid_request'],
    ['a fractional priority', { queue: 'ok', task: 't', priority: 1.5 }, 'invalid_request'],
    ['a priority above smallint', { queue: 'ok', task: 't', priority: 32_768 }, 'invalid_request'],
    ['a priority below smallint', { queue: 'ok', task: 't', priority: -32_769 }, 'invalid_request'],
    ['maxAttempts 0', { queue: 'ok', task: 't', maxAttempts: 0 }, 'invalid_request'],
    ['maxAttempts 1001', { queue: 'ok', task: 't', maxAttempts: 1001 }, 'invalid_request'],
    ['a fractional maxAttempts', { queue: 'ok', task: 't', maxAttempts: 2.5 }, 'invalid_request'],
    ['an empty idempotency key', { queue: 'ok', task: 't', idempotencyKey: '' }, 'invalid_request'],
    ['an invalid runAt', { queue: 'ok', task: 't', runAt: new Date('nope') }, 'invalid_request'],
    ['a BigInt payload', { queue: 'ok', task: 't', payload: { n: 1n } }, 'invalid_request'],
    ['a function payload', { queue: 'ok', task: 't', payload: () => 1 }, 'invalid_request'],
  ];

  // A database of its own that no other test writes to: every case must leave it empty.
  let empty: TestDatabase;
  beforeAll(async () => {
    empty = await createTestDatabase({ max: 1 });
  });
  afterAll(async () => {
    await empty.drop();
  });

  it.each(cases)('%s', async (_label, item, code, maxPayloadBytes) => {
    const err = await jobEnqueue(empty.sql, { ...item, ...(maxPayloadBytes ? { maxPayloadBytes } : {}) }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(DispatchError);
    expect((err as DispatchError).code).toBe(code);
    const [counts] = await empty.sql`select (select count(*)::int from jobs) as jobs, (select count(*)::int from queues) as queues`;
    expect(counts).toEqual({ jobs: 0, queues: 0 });
  });

  it('a circular payload is invalid_request', async () => {
    const before = await rowCounts();
    const payload: Record<string, unknown> = {};
    payload.self = payload;
    await expect(jobEnqueue(db.sql, { queue: 'ok', task: 't', payload })).rejects.toMatchObject({ code: 'invalid_request' });
    expect(await rowCounts()).toEqual(before);
  });

  it('a payload exactly at the limit is accepted; the default limit is 256 KiB', async () => {
    const payload = 'x'.repeat(98); // JSON "xxx…" = 100 bytes
    expect((await jobEnqueue(db.sql, { queue: 'limit-ok', task: 't', payload, maxPayloadBytes: 100 })).created).toBe(true);
    await expect(jobEnqueue(db.sql, { queue: 'limit-ok', task: 't', payload: 'x'.repeat(262_144) })).rejects.toMatchObject({ code: 'payload_too_large', details: { limit: 262_144 } });
  });

  it('one bad item fails the whole batch, naming the item, and writes nothing', async () => {
    const before = await rowCounts();
    const err = await jobEnqueueMany(db.sql, {
      items: [
        { queue: 'batch-ok', task: 't' },
        { queue: 'batch-ok', task: 't', delayMs: -5 },
      ],
    }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(DispatchError);
    expect((err as DispatchError).message).toContain('item 1');
    expect(await rowCounts()).toEqual(before);
  });
});
