// The Transport conformance cases (River's riverdrivertest idea): one table of behaviour every
// implementation of the worker ↔ control-plane contract must show. transport.test.ts runs each
// case against every subject in subjects.ts. To add a case, append an entry to `cases`: use only
// `s.transport` and the Subject back door, and queue names from `ctx` (see docs/architecture.md §13).
import { isDispatchError } from '@pgdispatch/core/errors';
import type { LeaseRef } from '@pgdispatch/core/transport';
import type { ClaimedJob } from '@pgdispatch/core/types';
import { expect } from 'vitest';
import type { CaseContext, ConformanceCase, Subject } from './subject.js';

/** Long enough for any subject to claim a job that is already there; cases never wait it out. */
const WAIT_MS = 5_000;
/** For "nothing more to claim": how long a dequeue waits before answering []. */
const EMPTY_WAIT_MS = 150;

const ref = (j: ClaimedJob): LeaseRef => ({ id: j.id, leaseToken: j.leaseToken });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function dequeueOne(s: Subject, queue: string): Promise<ClaimedJob> {
  const jobs = await s.transport.dequeue({ queues: [queue], max: 1, waitMs: WAIT_MS });
  expect(jobs).toHaveLength(1);
  return jobs[0]!;
}

/** Enqueues a job on `ctx.queue` (or `job.queue`) and claims it. */
async function claimNew(s: Subject, ctx: CaseContext, job: { queue?: string; payload?: unknown; maxAttempts?: number } = {}): Promise<ClaimedJob> {
  const queue = job.queue ?? ctx.queue;
  await s.enqueue({ task: 'conformance.task', ...job, queue });
  return dequeueOne(s, queue);
}

/** A job claimed twice: `stale` lost its lease (expired, reaped), `live` holds it now. */
async function claimStaleAndLive(s: Subject, ctx: CaseContext): Promise<{ stale: ClaimedJob; live: ClaimedJob }> {
  const stale = await claimNew(s, ctx);
  await s.expireLease(stale.id);
  const live = await dequeueOne(s, ctx.queue);
  expect(live.id).toBe(stale.id);
  expect(live.leaseToken).not.toBe(stale.leaseToken);
  return { stale, live };
}

async function expectLeaseLost(p: Promise<unknown>): Promise<void> {
  await expect(p).rejects.toSatisfy((e: unknown) => isDispatchError(e, 'lease_lost'));
}

export const cases: ConformanceCase[] = [
  {
    name: 'claim: dequeue hands out a waiting job under a fresh lease, running, attempt 1',
    async run(s, ctx) {
      const id = await s.enqueue({ queue: ctx.queue, task: 'conformance.task', payload: { n: 1 } });
      const before = Date.now();
      const job = await dequeueOne(s, ctx.queue);
      expect(job).toMatchObject({ id, queue: ctx.queue, task: 'conformance.task', payload: { n: 1 }, attempt: 1 });
      expect(job.leaseToken).toMatch(/^[0-9a-f-]{36}$/);
      expect(job.leaseExpiresAt).toBeInstanceOf(Date);
      expect(job.leaseExpiresAt.getTime()).toBeGreaterThan(before);
      expect(await s.job(id)).toMatchObject({ state: 'running', attempt: 1 });
    },
  },
  {
    name: 'claim: never more than max, only from the queues asked for; the rest keeps waiting',
    async run(s, ctx) {
      const ids = [await s.enqueue({ queue: ctx.queue }), await s.enqueue({ queue: ctx.queue }), await s.enqueue({ queue: ctx.queue })];
      const other = await s.enqueue({ queue: ctx.otherQueue });
      const first = await s.transport.dequeue({ queues: [ctx.queue], max: 2, waitMs: WAIT_MS });
      expect(first).toHaveLength(2);
      const second = await s.transport.dequeue({ queues: [ctx.queue], max: 5, waitMs: WAIT_MS });
      expect([...first, ...second].map((j) => j.id).sort((a, b) => a - b)).toEqual(ids);
      expect(await s.transport.dequeue({ queues: [ctx.queue], max: 5, waitMs: EMPTY_WAIT_MS })).toEqual([]);
      expect((await s.job(other)).state).toBe('queued');
    },
  },
  {
    name: 'claim: waitMs 0 hands out what is claimable now and answers [] at once when nothing is',
    async run(s, ctx) {
      const id = await s.enqueue({ queue: ctx.queue });
      expect(await s.transport.dequeue({ queues: [ctx.queue], max: 5, waitMs: 0 })).toMatchObject([{ id, attempt: 1 }]);
      expect(await s.transport.dequeue({ queues: [ctx.queue], max: 5, waitMs: 0 })).toEqual([]);
      expect(await s.job(id)).toMatchObject({ state: 'running', attempt: 1 });
    },
  },
  {
    name: 'routing: a dequeue that declares tasks gets only their jobs; the others keep waiting unspent; omitted means any task',
    async run(s, ctx) {
      const other = await s.enqueue({ queue: ctx.queue, task: 'conformance.other' });
      const mine = await s.enqueue({ queue: ctx.queue, task: 'conformance.task' });
      const got = await s.transport.dequeue({ queues: [ctx.queue], tasks: ['conformance.task', 'conformance.absent'], max: 10, waitMs: WAIT_MS });
      expect(got.map((j) => j.id)).toEqual([mine]);
      expect(await s.transport.dequeue({ queues: [ctx.queue], tasks: ['conformance.absent'], max: 10, waitMs: EMPTY_WAIT_MS })).toEqual([]);
      expect(await s.job(other)).toMatchObject({ state: 'queued', attempt: 0 });
      const any = await s.transport.dequeue({ queues: [ctx.queue], max: 10, waitMs: WAIT_MS });
      expect(any.map((j) => j.id)).toEqual([other]);
    },
  },
  {
    name: 'claim: an aborted dequeue claims nothing',
    async run(s, ctx) {
      const id = await s.enqueue({ queue: ctx.queue });
      const ac = new AbortController();
      ac.abort();
      expect(await s.transport.dequeue({ queues: [ctx.queue], max: 1, waitMs: WAIT_MS, signal: ac.signal })).toEqual([]);
      expect(await s.job(id)).toMatchObject({ state: 'queued', attempt: 0, leaseExpiresAt: null });
    },
  },
  {
    name: 'deliver: complete records succeeded with the result and ends the lease',
    async run(s, ctx) {
      const job = await claimNew(s, ctx);
      expect(await s.transport.complete({ ...ref(job), result: { total: 42, items: ['a'] } })).toEqual({ id: job.id, ok: true });
      expect(await s.job(job.id)).toMatchObject({ state: 'succeeded', result: { total: 42, items: ['a'] }, leaseExpiresAt: null });
    },
  },
  {
    name: 'deliver: fail → retry_waiting while attempts remain, failed when not retryable or attempts are spent',
    async run(s, ctx) {
      // On its own queue: full-jitter backoff may make it claimable again within milliseconds.
      const retry = await claimNew(s, ctx, { queue: ctx.otherQueue, maxAttempts: 3 });
      const error = { message: 'boom', name: 'Error' };
      expect(await s.transport.fail({ ...ref(retry), error, retryable: true })).toEqual({ id: retry.id, ok: true, state: 'retry_waiting' });
      expect(await s.job(retry.id)).toMatchObject({ state: 'retry_waiting', leaseExpiresAt: null, lastError: { message: 'boom' } });
      const final = await claimNew(s, ctx, { maxAttempts: 3 });
      expect(await s.transport.fail({ ...ref(final), error, retryable: false })).toEqual({ id: final.id, ok: true, state: 'failed' });
      const last = await claimNew(s, ctx, { maxAttempts: 1 });
      expect(await s.transport.fail({ ...ref(last), error, retryable: true })).toEqual({ id: last.id, ok: true, state: 'failed' });
      expect((await s.job(last.id)).state).toBe('failed');
    },
  },
  {
    name: 'heartbeat: extends the lease and answers per item (an unknown job is lease_lost)',
    async run(s, ctx) {
      const job = await claimNew(s, ctx);
      const before = (await s.job(job.id)).leaseExpiresAt!;
      await sleep(20);
      const missing = { id: 2 ** 40, leaseToken: '00000000-0000-4000-8000-000000000000' };
      expect(await s.transport.heartbeat([ref(job), missing])).toEqual([
        { id: job.id, ok: true, cancelRequested: false },
        { id: missing.id, ok: false, code: 'lease_lost' },
      ]);
      expect((await s.job(job.id)).leaseExpiresAt!.getTime()).toBeGreaterThan(before.getTime());
    },
  },
  {
    name: 'fencing: a stale lease token is refused on every write and changes nothing',
    async run(s, ctx) {
      const { stale, live } = await claimStaleAndLive(s, ctx);
      const t = s.transport;
      const before = await s.job(live.id);
      expect(await t.heartbeat([ref(stale)])).toEqual([{ id: stale.id, ok: false, code: 'lease_lost' }]);
      expect(await t.complete({ ...ref(stale), result: 'stale' })).toEqual({ id: stale.id, ok: false, code: 'lease_lost' });
      expect(await t.fail({ ...ref(stale), error: { message: 'stale' }, retryable: false })).toEqual({ id: stale.id, ok: false, code: 'lease_lost' });
      expect(await t.release([ref(stale)])).toEqual([{ id: stale.id, ok: false, code: 'lease_lost' }]);
      await expectLeaseLost(t.saveStep({ ...ref(stale), name: 'stale-step', result: 1 }));
      await expectLeaseLost(t.loadSteps(ref(stale)));
      await expectLeaseLost(t.progress({ ...ref(stale), data: { stale: true } }));
      await expectLeaseLost(t.enqueueChild({ ...ref(stale), key: 'stale-child', job: { queue: ctx.otherQueue, task: 'conformance.child' } }));
      const after = await s.job(live.id);
      expect(after).toEqual(before);
      expect(after).toMatchObject({ state: 'running', attempt: 2 });
      expect(await t.loadSteps(ref(live))).toEqual({});
      expect(await t.dequeue({ queues: [ctx.otherQueue], max: 1, waitMs: EMPTY_WAIT_MS })).toEqual([]);
      expect(await t.complete({ ...ref(live), result: 'live' })).toEqual({ id: live.id, ok: true });
      expect(await s.job(live.id)).toMatchObject({ state: 'succeeded', result: 'live' });
    },
  },
  {
    name: 'batch: completions sent together, a stale and a live item for one job: only the live one lands',
    async run(s, ctx) {
      const { stale, live } = await claimStaleAndLive(s, ctx);
      // Issued in the same turn: batching implementations send them in one statement or request.
      const [a, b] = await Promise.all([s.transport.complete({ ...ref(stale), result: 'stale' }), s.transport.complete({ ...ref(live), result: 'live' })]);
      expect(a).toEqual({ id: stale.id, ok: false, code: 'lease_lost' });
      expect(b).toEqual({ id: live.id, ok: true });
      expect(await s.job(live.id)).toMatchObject({ state: 'succeeded', result: 'live' });
    },
  },
  {
    name: 'batch: failures sent together, a stale and a live item for one job: only the live one lands',
    async run(s, ctx) {
      const { stale, live } = await claimStaleAndLive(s, ctx);
      const [a, b] = await Promise.all([
        s.transport.fail({ ...ref(stale), error: { message: 'stale' }, retryable: false }),
        s.transport.fail({ ...ref(live), error: { message: 'live' }, retryable: false }),
      ]);
      expect(a).toEqual({ id: stale.id, ok: false, code: 'lease_lost' });
      expect(b).toEqual({ id: live.id, ok: true, state: 'failed' });
      expect(await s.job(live.id)).toMatchObject({ state: 'failed', lastError: { message: 'live' } });
    },
  },
  {
    name: 'batch: heartbeat and release with a stale and a live item for one job answer each item for itself',
    async run(s, ctx) {
      const { stale, live } = await claimStaleAndLive(s, ctx);
      expect(await s.transport.heartbeat([ref(stale), ref(live)])).toEqual([
        { id: stale.id, ok: false, code: 'lease_lost' },
        { id: live.id, ok: true, cancelRequested: false },
      ]);
      expect(await s.transport.release([ref(stale), ref(live)])).toEqual([
        { id: stale.id, ok: false, code: 'lease_lost' },
        { id: live.id, ok: true },
      ]);
      expect(await s.job(live.id)).toMatchObject({ state: 'queued', leaseExpiresAt: null });
    },
  },
  {
    name: 'batch: the same lease twice in one batch writes the job once; the repeat is not applied',
    async run(s, ctx) {
      const job = await claimNew(s, ctx);
      const [a, b] = await Promise.all([s.transport.complete({ ...ref(job), result: 'first' }), s.transport.complete({ ...ref(job), result: 'second' })]);
      expect(a).toEqual({ id: job.id, ok: true });
      expect(b.ok).toBe(false);
      expect(await s.job(job.id)).toMatchObject({ state: 'succeeded', result: 'first' });
    },
  },
  {
    name: 'scope: a credential for other queues is forbidden on every write and changes nothing; an allowed item beside it still applies',
    async run(s, ctx) {
      const theirs = await claimNew(s, ctx);
      const mine = await claimNew(s, ctx, { queue: ctx.otherQueue });
      const t = await s.scoped([ctx.otherQueue]);
      const before = await s.job(theirs.id);
      const refused = expect.objectContaining({ id: theirs.id, ok: false, code: 'forbidden' });
      const isForbidden = (e: unknown) => isDispatchError(e, 'forbidden');
      expect(await t.heartbeat([ref(theirs), ref(mine)])).toEqual([refused, { id: mine.id, ok: true, cancelRequested: false }]);
      expect(await t.complete({ ...ref(theirs), result: 'not yours' })).toEqual(refused);
      expect(await t.fail({ ...ref(theirs), error: { message: 'not yours' }, retryable: false })).toEqual(refused);
      expect(await t.release([ref(theirs)])).toEqual([refused]);
      await expect(t.saveStep({ ...ref(theirs), name: 'not-yours', result: 1 })).rejects.toSatisfy(isForbidden);
      await expect(t.loadSteps(ref(theirs))).rejects.toSatisfy(isForbidden);
      await expect(t.progress({ ...ref(theirs), data: 1 })).rejects.toSatisfy(isForbidden);
      // The child's queue is the credential's own: only the parent's queue refuses it.
      await expect(t.enqueueChild({ ...ref(theirs), key: 'escape', job: { queue: ctx.otherQueue, task: 'conformance.child' } })).rejects.toSatisfy(isForbidden);
      await expect(t.dequeue({ queues: [ctx.queue], max: 1, waitMs: EMPTY_WAIT_MS })).rejects.toSatisfy(isForbidden);
      expect(await s.job(theirs.id)).toEqual(before);
      expect(await s.transport.loadSteps(ref(theirs))).toEqual({});
      expect(await t.complete({ ...ref(mine), result: 'mine' })).toEqual({ id: mine.id, ok: true });
      expect(await s.job(mine.id)).toMatchObject({ state: 'succeeded', result: 'mine' });
    },
  },
  {
    name: 'values: a result PostgreSQL cannot store, sent beside a good one: the good lands; the bad is refused naming the field and its job ends failed',
    async run(s, ctx) {
      const good = await claimNew(s, ctx);
      const bad = await claimNew(s, ctx);
      const [a, b] = await Promise.all([
        s.transport.complete({ ...ref(good), result: { ok: true } }),
        s.transport.complete({ ...ref(bad), result: { body: 'GIF89a\u0000' } }),
      ]);
      expect(a).toEqual({ id: good.id, ok: true });
      expect(b).toMatchObject({ id: bad.id, ok: false, code: 'invalid_request', details: { field: 'result.body', state: 'failed' } });
      expect(await s.job(good.id)).toMatchObject({ state: 'succeeded', result: { ok: true } });
      expect(await s.job(bad.id)).toMatchObject({ state: 'failed', result: null, lastError: { name: 'UnstorableResult', retryable: false, details: { field: 'result.body' } } });
      const failing = await claimNew(s, ctx);
      expect(await s.transport.fail({ ...ref(failing), error: { message: 'half a pair \ud800' }, retryable: true })).toMatchObject({
        id: failing.id, ok: false, code: 'invalid_request', details: { field: 'error.message', state: 'failed' },
      });
      expect(await s.job(failing.id)).toMatchObject({ state: 'failed', lastError: { name: 'UnstorableError', retryable: false } });
      const stepping = await claimNew(s, ctx);
      const isInvalid = (e: unknown) => isDispatchError(e, 'invalid_request');
      await expect(s.transport.saveStep({ ...ref(stepping), name: 'nul', result: 'a\u0000' })).rejects.toSatisfy(isInvalid);
      await expect(s.transport.progress({ ...ref(stepping), data: ['\u0000'] })).rejects.toSatisfy(isInvalid);
      expect(await s.transport.loadSteps(ref(stepping))).toEqual({});
      expect((await s.job(stepping.id)).state).toBe('running');
    },
  },
  {
    name: 'cancel: a heartbeat carries the cancel request; the holder\'s fail then records cancelled',
    async run(s, ctx) {
      const job = await claimNew(s, ctx);
      expect(await s.transport.heartbeat([ref(job)])).toEqual([{ id: job.id, ok: true, cancelRequested: false }]);
      await s.cancel(job.id);
      expect(await s.transport.heartbeat([ref(job)])).toEqual([{ id: job.id, ok: true, cancelRequested: true }]);
      expect((await s.job(job.id)).state).toBe('running');
      expect(await s.transport.fail({ ...ref(job), error: { message: 'aborted' }, retryable: false })).toEqual({ id: job.id, ok: true, state: 'cancelled' });
      expect(await s.job(job.id)).toMatchObject({ state: 'cancelled', leaseExpiresAt: null });
    },
  },
  {
    name: 'release: back to queued without spending an attempt; a cancelled one ends cancelled',
    async run(s, ctx) {
      const job = await claimNew(s, ctx);
      expect(await s.transport.release([ref(job)])).toEqual([{ id: job.id, ok: true }]);
      expect(await s.job(job.id)).toMatchObject({ state: 'queued', attempt: 0, leaseExpiresAt: null });
      const again = await dequeueOne(s, ctx.queue);
      expect(again).toMatchObject({ id: job.id, attempt: 1 });
      await s.cancel(again.id);
      expect(await s.transport.release([ref(again)])).toEqual([{ id: job.id, ok: true }]);
      expect((await s.job(job.id)).state).toBe('cancelled');
    },
  },
  {
    name: 'steps: a checkpoint is kept (first result wins) and read back by the next attempt',
    async run(s, ctx) {
      const first = await claimNew(s, ctx);
      expect(await s.transport.loadSteps(ref(first))).toEqual({});
      await s.transport.saveStep({ ...ref(first), name: 'charge', result: { chargeId: 'ch_1' } });
      await s.transport.saveStep({ ...ref(first), name: 'charge', result: { chargeId: 'ch_2' } });
      await s.transport.saveStep({ ...ref(first), name: 'nothing', result: null });
      expect(await s.transport.loadSteps(ref(first))).toEqual({ charge: { chargeId: 'ch_1' }, nothing: null });
      await s.expireLease(first.id);
      const second = await dequeueOne(s, ctx.queue);
      expect(second.attempt).toBe(2);
      expect(await s.transport.loadSteps(ref(second))).toEqual({ charge: { chargeId: 'ch_1' }, nothing: null });
    },
  },
  {
    name: 'progress: a live holder may publish progress',
    async run(s, ctx) {
      const job = await claimNew(s, ctx);
      await expect(s.transport.progress({ ...ref(job), data: { pct: 50 } })).resolves.toBeUndefined();
      expect((await s.job(job.id)).state).toBe('running');
    },
  },
  {
    name: 'children: enqueued once per (parent, key), waiting, linked to the parent; a retried parent gets the same child',
    async run(s, ctx) {
      const parent = await claimNew(s, ctx);
      const child = { queue: ctx.otherQueue, task: 'conformance.child', payload: { n: 7 } };
      const first = await s.transport.enqueueChild({ ...ref(parent), key: 'step:notify:0', job: child });
      expect(first.created).toBe(true);
      expect(await s.job(first.jobId)).toMatchObject({ queue: ctx.otherQueue, task: 'conformance.child', payload: { n: 7 }, state: 'queued', parentId: parent.id });
      expect(await s.transport.enqueueChild({ ...ref(parent), key: 'step:notify:0', job: child })).toEqual({ jobId: first.jobId, created: false });
      const other = await s.transport.enqueueChild({ ...ref(parent), key: 'step:notify:1', job: child });
      expect(other.created).toBe(true);
      expect(other.jobId).not.toBe(first.jobId);
      await s.expireLease(parent.id);
      const retried = await dequeueOne(s, ctx.queue);
      expect(await s.transport.enqueueChild({ ...ref(retried), key: 'step:notify:0', job: child })).toEqual({ jobId: first.jobId, created: false });
      const claimed = await s.transport.dequeue({ queues: [ctx.otherQueue], max: 10, waitMs: WAIT_MS });
      expect(claimed.map((j) => j.id).sort((a, b) => a - b)).toEqual([first.jobId, other.jobId].sort((a, b) => a - b));
    },
  },
];
