import { useTestDatabase } from '@pgdispatch/engine/testing/database';
import { describe, expect, it } from 'vitest';
import { Enqueuer } from './enqueue.js';
import { Metrics } from './metrics.js';

// The Enqueuer's bookkeeping around group commit and ids-only batches: the metric counts created
// jobs, and the local wake-up names the queues that got a job runnable now, once per group.
const db = useTestDatabase();

const enqueued = async (m: Metrics, queue: string) => (await m.enqueued.get()).values.find((v) => v.labels.queue === queue)?.value ?? 0;

describe('Enqueuer', () => {
  it('a group of single enqueues counts its created jobs and wakes its runnable queues once', async () => {
    const metrics = new Metrics();
    const woken: string[][] = [];
    const enqueuer = new Enqueuer({ sql: db.sql, metrics, maxPayloadBytes: 1_024, onRunnable: (qs) => woken.push(qs), maxInFlight: 1 });
    const first = enqueuer.enqueueOne({ queue: 'g-now', task: 't' }); // goes out at once, alone
    const group = [
      enqueuer.enqueueOne({ queue: 'g-now', task: 't' }),
      enqueuer.enqueueOne({ queue: 'g-later', task: 't', delayMs: 60_000 }),
      enqueuer.enqueueOne({ queue: 'g-other', task: 't' }),
      enqueuer.enqueueOne({ queue: 'g-now', task: 't', payload: 'x'.repeat(2_000) }),
    ];
    expect(enqueuer.waiting).toBe(4);
    await first;
    const settled = await Promise.allSettled(group);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
    expect(woken).toEqual([['g-now'], ['g-now', 'g-other']]);
    expect([await enqueued(metrics, 'g-now'), await enqueued(metrics, 'g-later'), await enqueued(metrics, 'g-other')]).toEqual([2, 1, 1]);
  });

  it('an ids-only batch counts created jobs and wakes only for runnable new ones', async () => {
    const metrics = new Metrics();
    const woken: string[][] = [];
    const enqueuer = new Enqueuer({ sql: db.sql, metrics, maxPayloadBytes: 1_024, onRunnable: (qs) => woken.push(qs) });
    const res = await enqueuer.enqueueIds([{ queue: 'i-now', task: 't', idempotencyKey: 'k' }, { queue: 'i-now', task: 't', delayMs: 60_000 }]);
    expect(res).toEqual([{ id: expect.any(Number), created: true }, { id: expect.any(Number), created: true }]);
    expect(woken).toEqual([['i-now']]);
    await enqueuer.enqueueIds([{ queue: 'i-now', task: 't', idempotencyKey: 'k' }, { queue: 'i-now', task: 't', delayMs: 60_000 }]);
    expect(woken).toEqual([['i-now']]); // the existing job and a delayed one wake nobody
    expect(await enqueued(metrics, 'i-now')).toBe(3);
  });
});
