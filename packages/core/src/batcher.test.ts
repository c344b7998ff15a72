import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher.js';

/** A flush function that records its batches and resolves when the test says so. */
function recorder() {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const flush = (items: number[]) => {
    batches.push(items);
    return new Promise<number[]>((resolve) => gates.push(() => resolve(items.map((i) => i * 10))));
  };
  const openAll = () => gates.splice(0).forEach((g) => g());
  return { batches, flush, openAll };
}
const turn = () => new Promise((r) => setImmediate(r));

describe('Batcher', () => {
  it('coalesces items pushed in one turn into one flush, answering each in order', async () => {
    const r = recorder();
    const b = new Batcher(r.flush);
    const outs = [b.push(1), b.push(2), b.push(3)];
    expect(r.batches).toEqual([]); // not before the next turn
    await turn();
    expect(r.batches).toEqual([[1, 2, 3]]);
    r.openAll();
    expect(await Promise.all(outs)).toEqual([10, 20, 30]);
  });

  it('eager: a lone item goes out at once; items arriving meanwhile gather into the next flush', async () => {
    const r = recorder();
    const b = new Batcher(r.flush, { eager: true, maxInFlight: 1 });
    const first = b.push(1);
    expect(r.batches).toEqual([[1]]); // synchronously, no turn of the loop
    const rest = [b.push(2), b.push(3)];
    expect(b.waiting).toBe(2);
    await turn();
    expect(r.batches).toEqual([[1]]); // one in flight: the others wait
    r.openAll();
    expect(await first).toBe(10);
    await turn();
    expect(r.batches).toEqual([[1], [2, 3]]);
    r.openAll();
    expect(await Promise.all(rest)).toEqual([20, 30]);
    expect(b.waiting).toBe(0);
  });

  it('a failed flush rejects the items of that flush only', async () => {
    let n = 0;
    const b = new Batcher<number, number>(async (items) => {
      if (n++ === 0) throw new Error('boom');
      return items;
    }, { eager: true, maxInFlight: 1 });
    const a = b.push(1);
    const c = b.push(2);
    await expect(a).rejects.toThrow('boom');
    expect(await c).toBe(2);
  });
});
