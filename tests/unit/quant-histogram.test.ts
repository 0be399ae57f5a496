import { describe, expect, it } from 'vitest';
import {
  accumulateCounts,
  accumulateHistogram,
  binCenters,
  foldAbsHistogram,
  histogramOf,
  histogramQuantile,
  histogramTotal,
  sumHistograms,
} from '../../src/lib/quant/histogram.ts';
import { QpError } from '../../src/lib/util/errors.ts';
import { gaussian } from '../support/quant-helpers.ts';

describe('accumulateHistogram', () => {
  it('bins values into equal bins, clamps outliers, ignores NaN', () => {
    const h = new Float64Array(4); // [0,1) [1,2) [2,3) [3,4]
    accumulateHistogram(Float32Array.of(0, 0.999, 1, 2.5, 3.999, 4, -5, 100, NaN, Infinity, -Infinity), 0, 4, h);
    // 0, 0.999, -5, -Inf -> bin 0 ; 1 -> bin 1 ; 2.5 -> bin 2 ; 3.999, 4 (hi), 100, +Inf -> bin 3
    expect(Array.from(h)).toEqual([4, 1, 1, 4]);
  });

  it('integer counts bin exactly like the float histogram', () => {
    const c = new Uint32Array(4);
    accumulateCounts(Float32Array.of(0, 0.999, 1, 2.5, 3.999, 4, -5, 100, NaN, Infinity, -Infinity), 0, 4, c);
    expect(Array.from(c)).toEqual([4, 1, 1, 4]);
  });

  it('accumulates across calls and handles huge values without int32 wrap', () => {
    const h = new Float64Array(3);
    accumulateHistogram(Float32Array.of(1e30, -1e30, 3e9), -1, 1, h);
    accumulateHistogram(Float32Array.of(0), -1, 1, h);
    expect(Array.from(h)).toEqual([1, 1, 2]);
  });

  it('puts everything in bin 0 when the range is degenerate', () => {
    const h = new Float64Array(3);
    accumulateHistogram(Float32Array.of(2, 2, NaN), 2, 2, h);
    expect(Array.from(h)).toEqual([2, 0, 0]);
  });

  it('rejects non-finite ranges and empty histograms', () => {
    expect(() => accumulateHistogram(Float32Array.of(1), 0, Infinity, new Float64Array(2))).toThrow(QpError);
    expect(() => accumulateHistogram(Float32Array.of(1), 0, 1, new Float64Array(0))).toThrow(QpError);
    for (const [lo, hi] of [
      [NaN, 1],
      [-Infinity, 1],
      [0, NaN],
    ])
      expect(() => accumulateCounts(Float32Array.of(1), lo, hi, new Uint32Array(2))).toThrow(QpError);
  });

  it('micro-benchmark: prints throughput on 6.7M floats (no timing assertion)', () => {
    const data = gaussian(6_700_000, 7);
    const h = new Float64Array(2048);
    accumulateHistogram(data, -6, 6, h); // warm-up
    h.fill(0);
    const t0 = performance.now();
    accumulateHistogram(data, -6, 6, h);
    const ms = performance.now() - t0;
    console.log(`accumulateHistogram: 6.7M floats in ${ms.toFixed(1)} ms (${(data.length / ms / 1e3).toFixed(0)} M/s)`);
    expect(histogramTotal(h)).toBe(data.length);
  });
});

describe('histogram helpers', () => {
  it('bin centers', () => {
    expect(Array.from(binCenters(-1, 1, 4))).toEqual([-0.75, -0.25, 0.25, 0.75]);
  });

  it('sums histograms and rejects different lengths', () => {
    expect(Array.from(sumHistograms([Float64Array.of(1, 2), Float64Array.of(3, 4)]))).toEqual([4, 6]);
    expect(() => sumHistograms([new Float64Array(2), new Float64Array(3)])).toThrow(QpError);
    expect(() => sumHistograms([])).toThrow(QpError);
  });

  it('quantiles of a uniform histogram interpolate linearly', () => {
    const h = new Float64Array(10).fill(5); // uniform over [0, 10]
    expect(histogramQuantile(h, 0, 10, 0.5)).toBeCloseTo(5, 12);
    expect(histogramQuantile(h, 0, 10, 0.25)).toBeCloseTo(2.5, 12);
    expect(histogramQuantile(h, 0, 10, 0.99)).toBeCloseTo(9.9, 12);
    expect(histogramQuantile(h, 0, 10, 0)).toBe(0);
    expect(histogramQuantile(h, 0, 10, 1)).toBe(10);
  });

  it('quantiles skip empty bins', () => {
    const h = Float64Array.of(0, 2, 0, 0, 2); // over [0, 5]: mass in [1,2) and [4,5]
    expect(histogramQuantile(h, 0, 5, 0)).toBe(1);
    expect(histogramQuantile(h, 0, 5, 0.5)).toBe(2);
    expect(histogramQuantile(h, 0, 5, 0.75)).toBe(4.5);
    expect(() => histogramQuantile(new Float64Array(3), 0, 1, 0.5)).toThrow(/empty/);
    expect(() => histogramQuantile(h, 0, 5, 1.5)).toThrow(QpError);
    expect(() => histogramQuantile(h, 0, 5, -0.1)).toThrow(QpError);
    expect(() => histogramQuantile(h, 0, 5, NaN)).toThrow(QpError);
  });

  it('quantiles are in data units when the range does not start at 0', () => {
    const h = Float64Array.of(1, 1, 1, 1);
    expect(histogramQuantile(h, 2, 6, 0.5)).toBe(4); // bins of width 1 from 2
    expect(histogramQuantile(h, -3, 1, 0.25)).toBe(-2);
    expect(histogramQuantile(h, -3, 1, 1)).toBe(1);
  });

  it('folds a signed histogram into |x| bins, splitting by overlap', () => {
    // 4 bins over [-2, 2]: [-2,-1) = 4, [-1,0) = 2, [0,1) = 1, [1,2] = 3
    const h = Float64Array.of(4, 2, 1, 3);
    // |x| over [0,2] in 2 bins: [0,1) gets 2 + 1, [1,2] gets 4 + 3
    expect(Array.from(foldAbsHistogram(h, -2, 2, 2))).toEqual([3, 7]);
    // 4 bins over [0,2]: [-1,0) spreads 1 + 1 into [0,.5) and [.5,1); [0,1) spreads .5 + .5
    expect(Array.from(foldAbsHistogram(h, -2, 2, 4))).toEqual([1.5, 1.5, 3.5, 3.5]);
    // a bin straddling 0 is split at 0: 1 bin over [-1, 3] = 8 values -> 2 at |x| in [0,1], 6 in [0,3]
    const f = foldAbsHistogram(Float64Array.of(8), -1, 3, 3);
    expect(f[0]).toBeCloseTo(2 + 2, 12);
    expect(f[1]).toBeCloseTo(2, 12);
    expect(f[2]).toBeCloseTo(2, 12);
    // smaller absHi: mass beyond it lands in the last bin, totals preserved
    const g = foldAbsHistogram(h, -2, 2, 2, 1);
    expect(Array.from(g)).toEqual([1.5, 8.5]);
    // one |x| bin holds everything
    expect(Array.from(foldAbsHistogram(h, -2, 2, 1))).toEqual([10]);
  });

  it('spreads each side of a bin over every |x| bin it covers, with wide |x| bins and past absHi', () => {
    // 1 bin over [-2, 2] = 8 values: 4 at |x| in [0, 2] and 4 at x in [0, 2]; |x| bins of 0.5 get 1 + 1 each
    expect(Array.from(foldAbsHistogram(Float64Array.of(8), -2, 2, 4))).toEqual([2, 2, 2, 2]);
    // |x| bins of width 2 over [0, 8]: the source bin [2, 6] = 4 splits over [2,4) and [4,6)
    expect(Array.from(foldAbsHistogram(Float64Array.of(0, 4), -2, 6, 4, 8))).toEqual([0, 2, 2, 0]);
    // [0, 2] = 4 into |x| bins [0,.5) [.5,1]: the part past absHi = 1 joins the last bin
    expect(Array.from(foldAbsHistogram(Float64Array.of(4), 0, 2, 2, 1))).toEqual([1, 3]);
  });

  it('folds a zero-width range into the bin of |lo|, and an all-zero range into bin 0', () => {
    // every value is 2: |x| over [0, 2] in 4 bins, 2 is the upper end of the last bin
    expect(Array.from(foldAbsHistogram(Float64Array.of(5), 2, 2, 4))).toEqual([0, 0, 0, 5]);
    // every value is -1, |x| over [0, 2]: bin [1, 1.5)
    expect(Array.from(foldAbsHistogram(Float64Array.of(2, 3), -1, -1, 4, 2))).toEqual([0, 0, 5, 0]);
    expect(Array.from(foldAbsHistogram(Float64Array.of(2, 3), 0, 0, 3))).toEqual([5, 0, 0]);
  });

  it('rejects an |x| histogram without bins', () => {
    expect(() => foldAbsHistogram(Float64Array.of(1), -1, 1, 0)).toThrow(QpError);
    expect(() => foldAbsHistogram(Float64Array.of(1), -1, 1, NaN)).toThrow(QpError);
  });

  it('histogramOf counts a Gaussian sample symmetric around 0', () => {
    const h = histogramOf(gaussian(100_000, 3), -5, 5, 10);
    expect(histogramTotal(h)).toBe(100_000);
    // P(|x| < 1) = 0.6827 -> bins [-1,0) and [0,1)
    expect((h[4] + h[5]) / 100_000).toBeCloseTo(0.6827, 2);
  });
});
