import { describe, expect, it } from 'vitest';
import { WorkerPresence } from './worker-presence.js';

const http = { tier: 'http', subject: 'w' } as const;

describe('WorkerPresence', () => {
  it('reports queues no executor asked for within the window; `*` covers every queue', async () => {
    const p = new WorkerPresence(60_000);
    expect(p.unattendedQueues(['a', 'b'])).toEqual(['a', 'b']);
    await p.track(http, ['c', 'b'], async () => []);
    expect(p.unattendedQueues(['a', 'b', 'c'])).toEqual(['a']);
    expect(p.unattendedQueues(['a', 'b', 'c'], Date.now() + 61_000)).toEqual(['a', 'b', 'c']);
    await p.track({ tier: 'in-process', subject: 'in-process' }, '*', async () => []);
    expect(p.unattendedQueues(['a', 'z'])).toEqual([]);
  });

  it('lists an executor as waiting while its dequeue is open, and keeps the result of the request', async () => {
    const p = new WorkerPresence();
    let release!: (v: number[]) => void;
    const pending = p.track(http, ['q'], () => new Promise<number[]>((r) => (release = r)));
    expect(p.workers()).toMatchObject([{ tier: 'http', subject: 'w', queues: ['q'], waiting: true }]);
    release([1, 2]);
    expect(await pending).toEqual([1, 2]);
    expect(p.workers()).toMatchObject([{ waiting: false }]);
  });
});
