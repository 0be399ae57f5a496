/**
 * The benchmarks' ratio and load helpers (scripts/cpu-load.ts): the median of per-round
 * ratios, and the busy processes `bench:perf --load N` starts and stops.
 */
import { describe, expect, it } from 'vitest';
import { roundRatios, startCpuLoad } from '../../scripts/cpu-load.ts';

describe('roundRatios', () => {
  it('divides each round by its own baseline and takes the median of those ratios', () => {
    // the medians of the columns (3 / 2 = 1.5) would hide that every round measured 2×
    const r = roundRatios([2, 4, 8], [1, 2, 4]);
    expect(r.rounds).toEqual([2, 2, 2]);
    expect(r.median).toBe(2);
    expect(roundRatios([3, 1, 2, 10], [1, 1, 1, 1])).toMatchObject({ median: 2.5, min: 1, max: 10 });
  });

  it('refuses rounds without baselines', () => {
    expect(() => roundRatios([1, 2], [1])).toThrow(/as many/);
    expect(() => roundRatios([], [])).toThrow(/as many/);
  });
});

describe('startCpuLoad', () => {
  it('starts busy processes and stops them', async () => {
    const load = startCpuLoad(2);
    expect(load.pids).toHaveLength(2);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(load.pids.every(alive)).toBe(true);
    await load.stop();
    expect(load.pids.some(alive)).toBe(false);
    expect(startCpuLoad(0).pids).toEqual([]);
  });
});
