// Runtime unit tests: the runtime's own logic against an in-memory fake Transport. They make no
// claim about the HTTP layer or the control plane (see http-transport.test.ts and the e2e suite).
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { NonRetryableError, WorkerShutdownError } from './errors.js';
import { WorkerRuntime } from './runtime.js';
import type { WorkerRuntimeOptions } from './runtime.js';
import { defineTask } from './task.js';
import type { TaskDefinition } from './task.js';
import { FakeTransport, waitFor } from './testing/fake-transport.js';

const runtimes: WorkerRuntime[] = [];
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.stop()));
});

function start(transport: FakeTransport, tasks: TaskDefinition[], opts: Partial<WorkerRuntimeOptions> = {}): WorkerRuntime {
  // Jobs are pushed to queue `default`; child jobs go to `children`, which this runtime does not run.
  const rt = new WorkerRuntime({ transport, tasks, queues: ['default'], dequeueWaitMs: 200, heartbeatMs: 1_000, shutdownGraceMs: 1_000, ...opts });
  runtimes.push(rt);
  rt.start();
  return rt;
}

/** A handler that blocks until released, and counts how many run at once. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const stats = { running: 0, peak: 0 };
  const task = defineTask({
    name: 'gated',
    payload: z.object({}),
    handler: async () => {
      stats.running++;
      stats.peak = Math.max(stats.peak, stats.running);
      await opened;
      stats.running--;
      return { done: true };
    },
  });
  return { task, open, stats };
}


/** A task that waits until its signal aborts, then rejects with the abort reason (captured). */
function waitForAbortTask() {
  let captured: unknown;
  const task = defineTask({
    name: 'wait',
    payload: z.unknown(),
    handler: (_p, ctx) =>
      new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject((captured = ctx.signal.reason)))),
  });
  return { task, reason: () => captured };
}

describe('worker runtime (unit, fake transport)', () => {
  it('never runs more handlers than its concurrency and asks only for free slots', async () => {
    const t = new FakeTransport();
    const g = gate();
    t.push(...Array.from({ length: 10 }, () => ({ task: 'gated' })));
    const rt = start(t, [g.task], { concurrency: 3 });
    await waitFor(() => g.stats.running === 3);
    await new Promise((r) => setTimeout(r, 50));
    expect(g.stats.running).toBe(3);
    expect(rt.stats().inFlight).toBe(3);
    expect(t.dequeueRequests.length).toBeGreaterThan(0);
    expect(t.dequeueRequests.filter((r) => r.max < 1 || r.max > 3)).toEqual([]);
    g.open();
    await waitFor(() => t.completed.size === 10);
    expect(g.stats.peak).toBe(3);
    expect(rt.stats()).toMatchObject({ started: 10, succeeded: 10, failed: 0, inFlight: 0 });
  });

  it('completes with the handler result and fails with retryable by default', async () => {
    const t = new FakeTransport();
    const ok = defineTask({ name: 'ok', payload: z.object({ n: z.number() }), handler: ({ n }) => ({ doubled: n * 2 }) });
    const boom = defineTask({ name: 'boom', payload: z.unknown(), handler: () => { throw new Error('transient'); } });
    const [a, b] = t.push({ task: 'ok', payload: { n: 21 } }, { task: 'boom' });
    start(t, [ok, boom]);
    await waitFor(() => t.completed.size === 1 && t.failed.size === 1);
    expect(t.completed.get(a!.id)).toEqual({ doubled: 42 });
    expect(t.failed.get(b!.id)).toMatchObject({ retryable: true, error: { message: 'transient', name: 'Error' } });
  });

  it('declares its tasks on every dequeue, and releases a job of an unknown task without failing it', async () => {
    // An api that ignores the declaration (it predates task routing) is the only way to get one.
    const t = new FakeTransport({ ignoreTasks: true });
    const typed = defineTask({ name: 'typed', payload: z.unknown(), handler: () => 1 });
    const [unknown, known] = t.push({ task: 'nope' }, { task: 'typed' });
    start(t, [typed]);
    await waitFor(() => t.completed.size === 1 && t.released.length >= 1);
    expect(new Set(t.released)).toEqual(new Set([unknown!.id]));
    expect(t.job(unknown!.id)).toMatchObject({ state: 'queued', attempt: 0 });
    expect(t.completed.has(known!.id)).toBe(true);
    expect(t.failed.size).toBe(0);
    expect(t.dequeueRequests.length).toBeGreaterThan(0);
    for (const r of t.dequeueRequests) expect(r.tasks).toEqual(['typed']);
  });

  it('fails non-retryable for a payload that fails its schema, and a NonRetryableError', async () => {
    const t = new FakeTransport();
    const typed = defineTask({ name: 'typed', payload: z.object({ n: z.number() }), handler: () => 1 });
    const final = defineTask({ name: 'final', payload: z.unknown(), handler: () => { throw new NonRetryableError('bad input', { details: { why: 'x' } }); } });
    const [bad, nr] = t.push({ task: 'typed', payload: { n: 'one' } }, { task: 'final' });
    start(t, [typed, final]);
    await waitFor(() => t.failed.size === 2);
    const badFail = t.failed.get(bad!.id)!;
    expect(badFail.retryable).toBe(false);
    expect(badFail.error.details).toMatchObject({ issues: [{ path: ['n'], code: 'invalid_type' }] });
    expect(t.failed.get(nr!.id)).toMatchObject({ retryable: false, error: { name: 'NonRetryableError', details: { why: 'x' } } });
  });

  it('honours a task-level retryable predicate', async () => {
    const t = new FakeTransport();
    const task = defineTask({
      name: 'pred',
      payload: z.unknown(),
      retryable: (err) => !(err instanceof RangeError),
      handler: () => { throw new RangeError('out of range'); },
    });
    const [j] = t.push({ task: 'pred' });
    start(t, [task]);
    await waitFor(() => t.failed.size === 1);
    expect(t.failed.get(j!.id)?.retryable).toBe(false);
  });

  it('skips steps already recorded, loads saved steps once per attempt, and derives child keys from the step', async () => {
    const t = new FakeTransport();
    const ran: string[] = [];
    const task = defineTask({
      name: 'steps',
      payload: z.unknown(),
      handler: async (_p, ctx) => {
        const a = await ctx.step('a', () => { ran.push('a'); return { at: new Date(0) }; });
        const b = await ctx.step('b', async () => {
          ran.push('b');
          await ctx.enqueue({ queue: 'children', task: 'noop' });
          await ctx.enqueue({ queue: 'children', task: 'noop' });
          return 2;
        });
        await ctx.enqueue({ queue: 'children', task: 'noop' });
        const c = await ctx.step('c', () => { ran.push('c'); return 3; });
        return { a, b, c };
      },
    });
    const [job] = t.push({ id: 7, task: 'steps', attempt: 2 });
    t.steps.set(7, { a: { at: 'saved' } }); // as if attempt 1 finished step a, then crashed
    start(t, [task]);
    await waitFor(() => t.completed.size === 1);
    expect(ran).toEqual(['b', 'c']);
    expect(t.loadStepsCalls).toBe(1);
    expect(t.completed.get(job!.id)).toEqual({ a: { at: 'saved' }, b: 2, c: 3 });
    expect(t.steps.get(7)).toEqual({ a: { at: 'saved' }, b: 2, c: 3 });
    expect(t.children.map((c) => c.key)).toEqual(['step:b:0', 'step:b:1', 'call:0']);
  });

  it('a retry that re-issues the same enqueues finds the first attempt\'s children', async () => {
    const t = new FakeTransport();
    let attempts = 0;
    const task = defineTask({
      name: 'fanout',
      payload: z.unknown(),
      handler: async (_p, ctx) => {
        attempts++;
        await ctx.enqueue({ queue: 'children', task: 'noop' });
        await ctx.enqueue({ queue: 'children', task: 'noop' }, { key: 'explicit' });
        if (ctx.attempt === 1) throw new Error('crash after fan-out');
        return null;
      },
    });
    t.push({ id: 1, task: 'fanout', attempt: 1 });
    start(t, [task]);
    await waitFor(() => t.failed.size === 1);
    t.push({ id: 1, task: 'fanout', attempt: 2 });
    await waitFor(() => t.completed.size === 1);
    expect(attempts).toBe(2);
    expect(t.children.map((c) => c.key)).toEqual(['call:0', 'key:explicit']);
  });

  it('returns the JSON round trip of a step result on the first run too', async () => {
    const t = new FakeTransport();
    const task = defineTask({
      name: 'json',
      payload: z.unknown(),
      handler: async (_p, ctx) => {
        const d = await ctx.step('d', () => new Date(0));
        const u = await ctx.step('u', () => undefined);
        return { d, u, dupe: await ctx.step('d', () => 1).catch((e: Error) => e.message) };
      },
    });
    t.push({ task: 'json' });
    start(t, [task]);
    await waitFor(() => t.completed.size === 1);
    expect([...t.completed.values()][0]).toEqual({ d: '1970-01-01T00:00:00.000Z', u: null, dupe: expect.stringMatching(/ran twice/) });
  });

  it('aborts the signal of a job whose cancel was requested, which then fails as cancelled', async () => {
    const t = new FakeTransport();
    const { task, reason } = waitForAbortTask();
    const [j] = t.push({ task: 'wait' });
    const rt = start(t, [task], { heartbeatMs: 30 });
    await waitFor(() => rt.stats().inFlight === 1);
    t.cancel(j!.id);
    await waitFor(() => t.failed.size === 1);
    expect((reason() as Error).name).toBe('JobCancelledError');
    expect(t.failed.get(j!.id)?.retryable).toBe(false);
    expect(rt.stats().cancelled).toBe(1);
  });

  it('aborts a job whose lease was lost and reports nothing for it', async () => {
    const t = new FakeTransport();
    const { task, reason } = waitForAbortTask();
    const [j] = t.push({ task: 'wait' });
    const rt = start(t, [task], { heartbeatMs: 30 });
    await waitFor(() => rt.stats().inFlight === 1);
    t.loseLease(j!.id);
    await waitFor(() => rt.stats().leaseLost === 1);
    expect(reason()).toMatchObject({ code: 'lease_lost' });
    expect(t.failed.size + t.completed.size).toBe(0);
  });

  // The AbortController behind ctx.signal is made on first read (held-job.ts): a handler that
  // looks at its signal only after the abort must still find it aborted, with the reason.
  it('a handler that reads its signal only after the cancel finds it aborted with JobCancelledError', async () => {
    const t = new FakeTransport();
    let release!: () => void;
    const later = new Promise<void>((r) => (release = r));
    let seen: { aborted: boolean; reason: unknown } | undefined;
    const late = defineTask({
      name: 'late',
      payload: z.unknown(),
      handler: async (_p, ctx) => {
        await later; // the cancel arrives before the handler ever touches ctx.signal
        seen = { aborted: ctx.signal.aborted, reason: ctx.signal.reason };
        ctx.signal.throwIfAborted();
      },
    });
    const [j] = t.push({ task: 'late' });
    const rt = start(t, [late], { heartbeatMs: 30 });
    await waitFor(() => rt.stats().inFlight === 1);
    t.cancel(j!.id);
    const beats = t.heartbeats;
    await waitFor(() => t.heartbeats >= beats + 2); // a heartbeat reply carrying cancelRequested came back
    release();
    await waitFor(() => t.failed.size === 1);
    expect(seen?.aborted).toBe(true);
    expect((seen?.reason as Error).name).toBe('JobCancelledError');
    expect(rt.stats().cancelled).toBe(1);
  });

  it('a handler that reads its signal only after its lease was lost finds it aborted with lease_lost', async () => {
    const t = new FakeTransport();
    let release!: () => void;
    const later = new Promise<void>((r) => (release = r));
    let reason: unknown;
    const late = defineTask({
      name: 'late',
      payload: z.unknown(),
      handler: async (_p, ctx) => {
        await later;
        reason = ctx.signal.reason;
        return ctx.signal.aborted ? 'saw the abort' : 'missed the abort';
      },
    });
    const [j] = t.push({ task: 'late' });
    const rt = start(t, [late], { heartbeatMs: 30 });
    await waitFor(() => rt.stats().inFlight === 1);
    t.loseLease(j!.id);
    const beats = t.heartbeats;
    await waitFor(() => t.heartbeats >= beats + 1); // a heartbeat went out after the loss…
    await new Promise((r) => setTimeout(r, 20)); // …and its lease_lost reply came back (the fake answers at once)
    release();
    await waitFor(() => rt.stats().leaseLost === 1);
    expect(reason).toMatchObject({ code: 'lease_lost' });
    expect(t.completed.size + t.failed.size).toBe(0);
  });

  it('a handler that never reads its signal still completes, and one reading it early is aborted on shutdown', async () => {
    const t = new FakeTransport();
    const plain = defineTask({ name: 'plain', payload: z.unknown(), handler: () => 'ok' });
    const { task, reason } = waitForAbortTask();
    const [a] = t.push({ task: 'plain' });
    const rt = start(t, [plain, task], { shutdownGraceMs: 30 });
    await waitFor(() => t.completed.size === 1);
    expect(t.completed.get(a!.id)).toBe('ok');
    const [b] = t.push({ task: 'wait' });
    await waitFor(() => rt.stats().inFlight === 1);
    await rt.stop();
    expect(reason()).toBeInstanceOf(WorkerShutdownError);
    expect(t.released).toEqual([b!.id]);
  });

  it('sends one heartbeat call for all held jobs', async () => {
    const t = new FakeTransport();
    const g = gate();
    t.push({ task: 'gated' }, { task: 'gated' }, { task: 'gated' });
    const seen: number[] = [];
    const heartbeat = t.heartbeat.bind(t);
    t.heartbeat = async (items) => {
      seen.push(items.length);
      return heartbeat(items);
    };
    start(t, [g.task], { heartbeatMs: 40 });
    await waitFor(() => g.stats.running === 3);
    await waitFor(() => seen.length >= 2);
    expect(seen.slice(-1)[0]).toBe(3);
    g.open();
  });

  it('keeps pulling after dequeue errors, backing off', async () => {
    const t = new FakeTransport();
    t.failNextDequeues = 3;
    const noop = defineTask({ name: 'noop', payload: z.unknown(), handler: () => ({ ok: true }) });
    t.push({ task: 'noop' });
    const rt = start(t, [noop], { dequeueBackoff: { baseMs: 5, maxMs: 20 } });
    await waitFor(() => t.completed.size === 1);
    expect(rt.stats().dequeueErrors).toBe(3);
  });

  it('stop() lets in-flight handlers finish within the grace period', async () => {
    const t = new FakeTransport();
    const slow = defineTask({ name: 'slow', payload: z.unknown(), handler: async () => { await new Promise((r) => setTimeout(r, 100)); return 'done'; } });
    t.push({ task: 'slow' }, { task: 'slow' });
    const rt = start(t, [slow], { shutdownGraceMs: 2_000 });
    await waitFor(() => rt.stats().inFlight === 2);
    await rt.stop();
    expect(t.completed.size).toBe(2);
    expect(t.released).toEqual([]);
    expect(rt.stats()).toMatchObject({ running: false, inFlight: 0 });
  });

  it('stop() aborts handlers still running after the grace period and releases their jobs', async () => {
    const t = new FakeTransport();
    const reasons: unknown[] = [];
    const stuck = defineTask({
      name: 'stuck',
      payload: z.unknown(),
      handler: (_p, ctx) =>
        new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => { reasons.push(ctx.signal.reason); reject(ctx.signal.reason); })),
    });
    const jobs = t.push({ task: 'stuck' }, { task: 'stuck' });
    const rt = start(t, [stuck], { shutdownGraceMs: 50, dequeueWaitMs: 10_000 });
    await waitFor(() => rt.stats().inFlight === 2);
    const dequeuesBefore = t.dequeueRequests.length;
    const t0 = Date.now();
    await rt.stop();
    expect(Date.now() - t0).toBeLessThan(2_000); // the pending long-poll was aborted, not waited out
    expect(t.released.sort()).toEqual(jobs.map((j) => j.id).sort());
    expect(reasons).toHaveLength(2);
    for (const r of reasons) expect(r).toBeInstanceOf(WorkerShutdownError);
    expect(t.failed.size).toBe(0);
    await waitFor(() => rt.stats().inFlight === 0);
    expect(rt.stats()).toMatchObject({ released: 2, failed: 0 });
    expect(t.dequeueRequests.length).toBe(dequeuesBefore);
  });

  it('prefetch: claims at most free slots + prefetch, heartbeats the buffered jobs, and stop() releases them unspent', async () => {
    const t = new FakeTransport();
    const g = gate();
    const jobs = t.push(...Array.from({ length: 10 }, () => ({ task: 'gated' })));
    const beats: number[][] = [];
    const heartbeat = t.heartbeat.bind(t);
    t.heartbeat = async (items) => {
      beats.push(items.map((i) => i.id));
      return heartbeat(items);
    };
    const rt = start(t, [g.task], { concurrency: 2, prefetch: 3, heartbeatMs: 30, shutdownGraceMs: 50 });
    await waitFor(() => g.stats.running === 2);
    const held = () => jobs.filter((j) => t.job(j.id)!.state === 'running');
    await waitFor(() => held().length === 5);
    await waitFor(() => beats.some((b) => b.length === 5));
    await new Promise((r) => setTimeout(r, 100)); // more dequeues would have happened by now
    expect(held()).toHaveLength(5);
    expect(t.dequeueRequests.length).toBeGreaterThan(0);
    expect(t.dequeueRequests.filter((r) => r.max > 5)).toEqual([]);
    expect(rt.stats()).toMatchObject({ inFlight: 5, started: 2 });
    // Every held job, the three buffered ones included, is in the latest heartbeat.
    expect([...beats.at(-1)!].sort()).toEqual(held().map((j) => j.id).sort());
    await rt.stop();
    expect(held()).toEqual([]);
    expect(t.released).toHaveLength(5);
    for (const id of t.released) expect(t.job(id)).toMatchObject({ state: 'queued', attempt: 0 });
    expect(g.stats.peak).toBe(2);
  });

  it('fails non-retryable when the result is not JSON', async () => {
    const t = new FakeTransport();
    const big = defineTask({ name: 'big', payload: z.unknown(), handler: () => ({ n: 1n }) });
    const [j] = t.push({ task: 'big' });
    start(t, [big]);
    await waitFor(() => t.failed.size === 1);
    expect(t.failed.get(j!.id)).toMatchObject({ retryable: false, error: { message: expect.stringMatching(/not JSON-serializable/) } });
  });
});
