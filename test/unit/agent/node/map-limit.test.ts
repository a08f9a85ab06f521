import { describe, expect, it } from '@jest/globals';
import { mapLimit } from '../../../../agent/node/map-limit.js';

/** A promise the test settles by hand. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

describe('mapLimit', () => {
  it('keeps results in input order', async () => {
    const results = await mapLimit([3, 1, 2], 2, async (n) => {
      await new Promise((resolve) => setImmediate(resolve));
      return n * 10;
    });
    expect(results).toEqual([30, 10, 20]);
  });

  it('never has more than `limit` tasks in flight', async () => {
    let inFlight = 0;
    let peak = 0;
    await mapLimit(
      Array.from({ length: 20 }, (_, i) => i),
      3,
      async () => {
        peak = Math.max(peak, ++inFlight);
        await new Promise((resolve) => setImmediate(resolve));
        inFlight--;
      },
    );
    expect(peak).toBe(3);
  });

  it('starts the next task as soon as any finishes, not when a whole batch does', async () => {
    const slow = gate();
    const started: number[] = [];
    const done = mapLimit([0, 1, 2, 3], 2, async (n) => {
      started.push(n);
      if (n === 0) await slow.opened;
    });
    // Task 0 is still held; 1, 2 and 3 went through the second slot.
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual([0, 1, 2, 3]);
    slow.open();
    await done;
  });

  it('treats a limit below 1 as 1 and accepts no items', async () => {
    expect(await mapLimit([1, 2], 0, async (n) => n)).toEqual([1, 2]);
    expect(await mapLimit([], 4, async (n: number) => n)).toEqual([]);
  });
});
