// Histogram calibration: the single-pass, sampled form against the exact two-pass form,
// and the re-binning / strided-binning kernels it is made of.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { accumulateCounts, accumulateCountsStrided, rebinHistogram } from '../../src/lib/quant/histogram.ts';
import { QpError } from '../../src/lib/util/errors.ts';

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

  it('clamps the source bins to the destination range: mass outside lands in the edge bins', () => {
    // 4 source bins of width 3 over [-4, 8] into 4 destination bins over [0, 4]:
    // [-4,-1) = 1 lies below: all in bin 0; [-1,2) = 2 is clamped to [0,2): 1 + 1;
    // [2,5) = 3 is clamped to [2,4): 1.5 + 1.5; [5,8] = 4 lies above: all in bin 3
    const dst = new Float64Array(4);
    rebinHistogram(Float64Array.from([1, 2, 3, 4]), -4, 8, dst, 0, 4);
    expect(Array.from(dst)).toEqual([2, 1, 1.5, 5.5]);
  });

  it('puts a zero-width source outside or at the end of the destination range in the edge bin', () => {
    const at = (v: number) => {
      const dst = new Float64Array(3); // [0,1) [1,2) [2,3]
      rebinHistogram(Float64Array.from([2, 3]), v, v, dst, 0, 3);
      return Array.from(dst);
    };
    expect(at(-7)).toEqual([5, 0, 0]);
    expect(at(3)).toEqual([0, 0, 5]); // the upper end belongs to the last bin
    expect(at(7)).toEqual([0, 0, 5]);
  });

  it('puts everything in bin 0 of a zero-width destination range', () => {
    const dst = new Float64Array(3);
    rebinHistogram(Float64Array.from([1, 2]), 0, 4, dst, 1, 1);
    expect(Array.from(dst)).toEqual([3, 0, 0]);
  });

  it('adds into what the destination already holds', () => {
    const dst = Float64Array.from([1, 1]);
    rebinHistogram(Float64Array.from([2, 4]), 0, 2, dst, 0, 2);
    expect(Array.from(dst)).toEqual([3, 5]);
  });

  it('rejects an empty destination', () => {
    expect(() => rebinHistogram(Float64Array.from([1]), 0, 1, new Float64Array(0), 0, 1)).toThrow(QpError);
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

  it('bins exactly the sampled values, as accumulateCounts would, and returns how many it sampled (property)', () => {
    // values around and outside the range, at its ends, NaN and ±Infinity
    const value = fc.oneof(
      fc.float({ min: -20, max: 20, noNaN: true }),
      fc.constantFrom(-4, 0, 4, NaN, Infinity, -Infinity, 1e30, -1e30),
    );
    fc.assert(
      fc.property(
        fc.array(value, { maxLength: 40 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 5 }),
        fc.nat(),
        fc.constantFrom<[number, number]>([-4, 4], [0, 4], [-1, 2.5], [2, 2], [3, -3]),
        (xs, bins, stride, o, [lo, hi]) => {
          const offset = o % stride;
          const data = Float32Array.from(xs);
          const sample = Float32Array.from(xs.filter((_, i) => i % stride === offset));
          const want = Uint32Array.from({ length: bins }, (_, k) => k); // counts add to what is there
          accumulateCounts(sample, lo, hi, want);
          const got = Uint32Array.from({ length: bins }, (_, k) => k);
          expect(accumulateCountsStrided(data, lo, hi, got, stride, offset)).toBe(sample.length);
          expect(Array.from(got)).toEqual(Array.from(want));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('counts a sample that ends exactly at the last value', () => {
    // 7 values, stride 3 from 0: 0, 3, 6 (the last index); a degenerate range counts the non-NaN ones in bin 0
    const data = Float32Array.from([1, 9, 9, NaN, 9, 9, 1]);
    const c = new Uint32Array(2);
    expect(accumulateCountsStrided(data, 1, 1, c, 3)).toBe(3);
    expect(Array.from(c)).toEqual([2, 0]);
    const d = new Uint32Array(2); // over [0, 2]: 1 is in bin 1, NaN nowhere
    expect(accumulateCountsStrided(data, 0, 2, d, 3)).toBe(3);
    expect(Array.from(d)).toEqual([0, 2]);
  });

  it('rejects a stride that is not a positive integer, an empty histogram and a non-finite range', () => {
    const data = Float32Array.from([0, 1, 2, 3]);
    for (const stride of [0, -1, 2.5, 0.5, NaN, Infinity])
      expect(() => accumulateCountsStrided(data, 0, 4, new Uint32Array(2), stride)).toThrow(QpError);
    expect(() => accumulateCountsStrided(data, 0, 4, new Uint32Array(0), 2)).toThrow(QpError);
    for (const [lo, hi] of [
      [NaN, 4],
      [-Infinity, 4],
      [0, NaN],
      [0, Infinity],
    ])
      expect(() => accumulateCountsStrided(data, lo, hi, new Uint32Array(2), 2)).toThrow(QpError);
  });
});
