// Issue #10 in the runtime: heartbeat replies matched to the lease they answer (not the job id),
// no heartbeat for a job whose outcome was sent, and a per-item refusal taken as final.
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { HeartbeatReply, LeaseOutcome, LeaseRef } from '@pgdispatch/core/transport';
import { WorkerRuntime, type JobFinishedEvent } from './runtime.js';
import { defineTask } from './task.js';
import { FakeTransport, waitFor } from './testing/fake-transport.js';

const runtimes: WorkerRuntime[] = [];
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.stop()));
});

/** Records every heartbeat's items. */
class RecordingTransport extends FakeTransport {
  readonly beats: LeaseRef[][] = [];
  override async heartbeat(items: LeaseRef[]): Promise<HeartbeatReply[]> {
    this.beats.push(items.map((i) => ({ ...i })));
    return super.heartbeat(items);
  }
}

/** Waits for its signal to abort; records which payloads were aborted. */
function waitingTask(aborted: string[]) {
  return defineTask({
    name: 'wait',
    payload: z.object({ n: z.string() }),
    handler: (p, ctx) =>
      new Promise((_resolve, reject) =>
        ctx.signal.addEventListener('abort', () => {
          aborted.push(p.n);
          reject(ctx.signal.reason);
        }),
      ),
  });
}

describe('worker runtime and the fencing rule', () => {
  it('a lease_lost heartbeat reply aborts the job holding that lease, not a newer lease on the same job id', async () => {
    const t = new RecordingTransport();
    const aborted: string[] = [];
    const rt = new WorkerRuntime({ transport: t, tasks: [waitingTask(aborted)], concurrency: 2, heartbeatMs: 40, dequeueWaitMs: 100, shutdownGraceMs: 200 });
    runtimes.push(rt);
    t.push({ id: 7, task: 'wait', payload: { n: 'old' } });
    rt.start();
    await waitFor(() => rt.inFlight === 1);
    // The old lease expired and this same worker claimed job 7 again: the fake now holds only the new lease.
    t.push({ id: 7, task: 'wait', payload: { n: 'new' } });
    // One heartbeat carried both leases of job 7 (the old one first): its replies are [lease_lost, ok].
    await waitFor(() => t.beats.some((b) => b.filter((i) => i.id === 7).length === 2));
    const from = t.beats.length;
    await waitFor(() => t.beats.length >= from + 2 && aborted.length > 0);
    expect(aborted).toEqual(['old']);
    expect(rt.inFlight).toBe(1);
  });

  it('does not heartbeat a job whose outcome has been sent', async () => {
    let releaseComplete!: () => void;
    const completeSent = new Promise<void>((r) => (releaseComplete = r));
    let completes = 0;
    class SlowComplete extends RecordingTransport {
      override async complete(item: LeaseRef & { result?: unknown }): Promise<LeaseOutcome> {
        completes++;
        await completeSent;
        return super.complete(item);
      }
    }
    const t = new SlowComplete();
    const aborted: string[] = [];
    const quick = defineTask({ name: 'quick', payload: z.unknown(), handler: async () => 'done' });
    const rt = new WorkerRuntime({ transport: t, tasks: [quick, waitingTask(aborted)], concurrency: 2, heartbeatMs: 30, dequeueWaitMs: 100, shutdownGraceMs: 200 });
    runtimes.push(rt);
    const [reported] = t.push({ task: 'quick' }, { task: 'wait', payload: { n: 'keeps-beating' } });
    rt.start();
    await waitFor(() => completes === 1);
    const from = t.beats.length;
    await waitFor(() => t.beats.length >= from + 4);
    const later = t.beats.slice(from).flat();
    expect(later.length).toBeGreaterThanOrEqual(4); // the running job is still heartbeated
    expect(later.filter((i) => i.leaseToken === reported!.leaseToken)).toEqual([]);
    releaseComplete();
  });

  it('takes a per-item refusal of its result as final: the job was recorded failed, it is not re-sent nor counted as a lost lease', async () => {
    let completes = 0;
    class RefusingTransport extends FakeTransport {
      override async complete(item: LeaseRef & { result?: unknown }): Promise<LeaseOutcome> {
        completes++;
        return { id: item.id, ok: false, code: 'invalid_request', message: 'result contains U+0000 (NUL) at offset 0; the job was recorded failed', details: { field: 'result', state: 'failed' } };
      }
    }
    const t = new RefusingTransport();
    const finished: JobFinishedEvent[] = [];
    const task = defineTask({ name: 'nul', payload: z.unknown(), handler: async () => '\u0000' });
    const rt = new WorkerRuntime({ transport: t, tasks: [task], heartbeatMs: 1_000, dequeueWaitMs: 100, shutdownGraceMs: 200, onJobFinished: (e) => finished.push(e) });
    runtimes.push(rt);
    t.push({ task: 'nul' });
    rt.start();
    await waitFor(() => finished.length === 1);
    expect(finished[0]!.outcome).toBe('failed');
    expect(completes).toBe(1);
    expect(rt.stats()).toMatchObject({ failed: 1, leaseLost: 0, unreported: 0 });
  });
});
