// Histogram calibration: the single-pass, sampled form against the exact two-pass form,
// and the re-binning / strided-binning kernels it is made of.
import { describe, expect, it } from 'vitest';
import { accumulateCounts, accumulateCountsStrided, rebinHistogram } from '../../src/lib/quant/histogram.ts';

describe('rebinHistogram', () => {
  it('is the identity for the same range and bin count', () => {
    const src = Float64Array.from([1, 0, 3, 5]);
    const dst = new Float64Array(4);
    rebinHistogram(src, -1, 3, dst, -1, 3);
    expect(Array.from(dst)).toEqual([1, 0, 3, 5]);
  });

  it('spreads a bin over the destination bins it overlaps, keeping the total', () => {
    const dst = new Float64Array(4); // [0,1) [1,2) [2,3) [3,4)
    rebinHistogram(Float64Array.from([8]), 0.5, 2.5, dst, 0, 4);
    expect(Array.from(dst)).toEqual([2, 4, 2, 0]);
    const fine = new Float64Array(8);
    rebinHistogram(Float64Array.from([2, 6]), 0, 4, fine, 0, 8); // halves of a wider range
    expect(Array.from(fine)).toEqual([1, 1, 3, 3, 0, 0, 0, 0]);
  });

  it('puts a zero-width source in the bin of its value', () => {
    const dst = new Float64Array(4);
    rebinHistogram(Float64Array.from([2, 3]), 2.2, 2.2, dst, 0, 4);
    expect(Array.from(dst)).toEqual([0, 0, 5, 0]);
  });
});

describe('accumulateCountsStrided', () => {
  it('bins every n-th value from the offset; stride 1 equals accumulateCounts', () => {
    const data = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    const c = new Uint32Array(8);
    expect(accumulateCountsStrided(data, 0, 8, c, 3, 1)).toBe(3); // 1, 4, 7
    expect(Array.from(c)).toEqual([0, 1, 0, 0, 1, 0, 0, 1]);
    const a = new Uint32Array(5);
    const b = new Uint32Array(5);
    accumulateCounts(data, 0, 8, a);
    accumulateCountsStrided(data, 0, 8, b, 1);
    expect(Array.from(b)).toEqual(Array.from(a));
  });
});
