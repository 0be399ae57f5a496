import { describe, expect, it } from 'vitest';
import { checkpoint, YIELD_EVERY_MS } from '../../src/lib/util/checkpoint.ts';

function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    /* a batch of work that never yields */
  }
}

describe('checkpoint', () => {
  it('lets a cancel posted as a task in during a loop of microtask-only awaits', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 0); // the cancel message: a macrotask
    let batches = 0;
    const loop = async () => {
      for (let i = 0; i < 10_000; i++) {
        await checkpoint(ac.signal);
        await Promise.resolve(); // an engine call that resolves as a microtask
        busy(5);
        batches++;
      }
    };
    const t0 = Date.now();
    await expect(loop()).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(batches).toBeGreaterThan(0);
    // stopped within one yield interval plus a batch, not after 10,000 batches
    expect(Date.now() - t0).toBeLessThan(YIELD_EVERY_MS * 4 + 50);
  });

  it('without a cancel, only yields (no error)', async () => {
    const ac = new AbortController();
    for (let i = 0; i < 5; i++) await checkpoint(ac.signal);
    expect(ac.signal.aborted).toBe(false);
  });
});
