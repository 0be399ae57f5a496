/**
 * Observers against exact expectations: worked out by hand, from a reference in another
 * language (tests/reference/kl_threshold.py, MXNet's entropy search), or from the app's
 * integer quantizer (quantizeToInt → dequantize) as the reference of the MSE search.
 * quant-observers.test.ts keeps the behavioural checks on realistic data.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { foldAbsHistogram, histogramOf, sumHistograms } from '../../src/lib/quant/histogram.ts';
import {
  calibrationNeeds,
  EMA_QUANTILE_BINS,
  klThreshold,
  mseSearch,
  MSE_STEPS_PER_CHANNEL,
  smooth,
  observeActivation,
  observerEntry,
  observeWeight,
} from '../../src/lib/quant/observers.ts';
import { computeQParams, dequantize, quantizeToInt } from '../../src/lib/quant/quantizer.ts';
import type { ActivationStats, BatchStats, QuantSpec } from '../../src/lib/quant/types.ts';
import { spec } from '../support/quant-helpers.ts';

const F = (a: number[]) => Float64Array.from(a);
const batchOf = (over: Partial<BatchStats>): BatchStats => ({ min: 0, max: 1, sum: 0, sumSq: 0, count: 1, ...over });

describe('smooth (MXNet’s _smooth_distribution)', () => {
  it('moves eps to each empty bin, taken evenly from the others, keeping the sum', () => {
    const h = F([0, 2, 0, 6]);
    expect(smooth(h, 4)).toBe(true);
    // 2 empty and 2 full bins: each full one gives eps · 2 / 2
    expect(Array.from(h)).toEqual([1e-4, 2 - 1e-4, 1e-4, 6 - 1e-4]);
    const three = F([0, 3, 3, 3, 9]);
    smooth(three, 4, 0.03);
    // 1 empty, 3 full: each full bin gives 0.01; bin 4 lies past n and stays
    expect(Array.from(three)).toEqual([0.03, 2.99, 2.99, 2.99, 9]);
  });

  it('lowers eps where taking it would empty a bin, and refuses an all-zero histogram', () => {
    // eps 1e-4 from one bin of 1e-4 would leave 0: take half of it instead
    const h = F([0, 1e-4]);
    expect(smooth(h, 2)).toBe(true);
    expect(Array.from(h)).toEqual([5e-5, 5e-5]);
    // 3 empty bins and one of 4e-4: taking 3 · 1e-4 would leave less than half of it, so half
    // (2e-4) is taken and spread over the empty bins, 2e-4 / 3 each
    const g = F([0, 0, 0, 4e-4]);
    smooth(g, 4);
    expect(g[3]).toBeCloseTo(2e-4, 15);
    expect(g[0]).toBeCloseTo(2e-4 / 3, 15);
    expect(g[0] + g[1] + g[2] + g[3]).toBeCloseTo(4e-4, 15);
    const full = F([1, 2]);
    expect(smooth(full, 2)).toBe(true);
    expect(Array.from(full)).toEqual([1, 2]);
    expect(smooth(F([0, 0, 5]), 2)).toBe(false);
  });

  it('caps eps by the smallest non-zero bin wherever it lies, and reads no bin past n', () => {
    // 1 empty, 2 full, eps 1.5: each full bin would give 0.75, more than half of the smallest
    // (1), so each gives 0.5 and the empty bin gets 0.5 · 2 / 1 = 1
    const h = F([0, 1, 4]);
    smooth(h, 3, 1.5);
    expect(Array.from(h)).toEqual([1, 0.5, 3.5]);
    // the same with the smallest bin last
    const g = F([0, 4, 1]);
    smooth(g, 3, 1.5);
    expect(Array.from(g)).toEqual([1, 3.5, 0.5]);
    // bin 2 lies past n: its 0.01 neither caps eps nor changes
    const past = F([0, 4, 0.01]);
    smooth(past, 2, 1);
    expect(Array.from(past)).toEqual([1, 3, 0.01]);
  });
});

describe('klThreshold: ties between candidates', () => {
  // four equal bins and nothing above: every candidate from 4 bins on merges into groups
  // whose non-zero bins are equal, so Q = P and KL = 0 for candidates 4 to 8
  const h = F([1, 1, 1, 1, 0, 0, 0, 0]);
  it('MXNet keeps the first minimum (the narrowest threshold)', () => {
    expect(klThreshold(h, 8, 2)).toBe(4);
  });
  it("NVIDIA's calibrator (zero bin flattened) keeps the last one (the widest)", () => {
    expect(klThreshold(h, 8, 2, 1, { zeroBin: 'neighbour' })).toBe(8);
  });
});

describe('klThreshold against MXNet’s search (tests/reference/kl_threshold.py)', () => {
  // the thresholds the reference prints; each is a whole number of bins
  const TAIL = [50, 40, 33, 0, 25, 20, 16, 0, 12, 9, 7, 5, 4, 3, 0, 2, 2, 1, 0, 1, 0, 0, 1, 1];
  it.each([
    ['tail', F(TAIL), 2.4, 4, 1, {}, 1.8],
    ['tail-neighbour', F([500, ...TAIL.slice(1)]), 2.4, 4, 1, { zeroBin: 'neighbour', startBin: 8 } as const, 1.8],
    ['tail-stride3', F(TAIL), 2.4, 4, 3, {}, 1.9],
    ['fractional', F([3e-5, 2e-5, 0, 1.5e-5, 0, 1e-5, 0, 0, 5e-6, 0, 0, 0, 0, 0, 0, 2e-6]), 1.6, 2, 1, {}, 0.6],
    ['spike-keep', F([500, ...TAIL.slice(1)]), 2.4, 4, 1, {}, 0.7],
    ['spike-late-start', F([500, ...TAIL.slice(1)]), 2.4, 4, 1, { zeroBin: 'neighbour', startBin: 20 } as const, 2.3],
    ['flat', F(new Array<number>(16).fill(10)), 3.2, 4, 1, {}, 3.2],
    ['bimodal', F([30, 20, 10, 5, 2, 1, 0, 0, 0, 0, 4, 9, 4, 1, 0, 0]), 16, 4, 1, {}, 13],
  ])('%s', (_name, hist, absHi, levels, stride, opts, want) => {
    expect(klThreshold(hist, absHi, levels, stride, opts)).toBeCloseTo(want, 12);
  });

  it('a first candidate below the levels starts at the levels', () => {
    const h = F([500, ...TAIL.slice(1)]);
    expect(klThreshold(h, 2.4, 4, 1, { zeroBin: 'neighbour', startBin: 2 })).toBeCloseTo(1.8, 12);
  });

  it('a candidate whose Q is all zero (its mass only in the outlier bin) never wins', () => {
    // mass only in the last bin: every candidate below it folds the mass into P's last bin,
    // where the merged Q of the sliced histogram holds nothing
    const h = new Float64Array(16);
    h[15] = 10;
    expect(klThreshold(h, 3.2, 4)).toBe(3.2);
  });

  it('refuses an empty histogram; a histogram of exact zeros only keeps the range under the zero-bin rule', () => {
    expect(() => klThreshold(new Float64Array(16), 1, 4)).toThrow(/empty histogram/);
    const zeros = new Float64Array(16);
    zeros[0] = 7;
    expect(klThreshold(zeros, 5, 4, 1, { zeroBin: 'neighbour' })).toBe(5);
    // levels >= bins: nothing to search
    expect(klThreshold(F([1, 2, 3, 4]), 9, 4)).toBe(9);
  });
});

/** The MSE search's reference: candidates (1 - 0.01 i), error from quantizeToInt → dequantize. */
function mseReference(
  v: number[],
  w: number[] | null,
  min: number,
  max: number,
  s: QuantSpec,
  steps: number,
  p: number,
): [number, number] {
  let best = Infinity;
  let out: [number, number] = [min, max];
  const x = Float32Array.from(v);
  for (let i = 0; i < steps; i++) {
    const lo = min * (1 - i * 0.01);
    const hi = max * (1 - i * 0.01);
    const qp = computeQParams(
      { min: Float32Array.of(lo), max: Float32Array.of(hi) },
      { ...s, granularity: 'per-tensor', axis: -1 },
    );
    const y = dequantize(quantizeToInt(x, [x.length], qp), [x.length], qp);
    let err = 0;
    let total = 0;
    for (let k = 0; k < x.length; k++) {
      const wk = w ? w[k] : 1;
      if (!(wk > 0)) continue;
      err += wk * Math.abs(y[k] - x[k]) ** p;
      total += wk;
    }
    const score = total > 0 ? err / total : 0;
    if (score < best) {
      best = score;
      out = [lo, hi];
    }
  }
  return out;
}

describe('mseSearch against the integer quantizer (property)', () => {
  const value = fc.float({ min: -8, max: 8, noNaN: true, noDefaultInfinity: true }).map(Math.fround);
  const specs = fc.record({
    bits: fc.constantFrom(2, 3, 4, 8),
    signed: fc.boolean(),
    symmetric: fc.boolean(),
    powerOfTwo: fc.boolean(),
  });

  it('picks the first candidate of least mean |error|^p, weighted or not', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(value, fc.constantFrom(0, 1, 2.5, 7)), { minLength: 1, maxLength: 24 }),
        specs,
        fc.integer({ min: 1, max: 30 }),
        fc.constantFrom(1, 2, 2.4),
        fc.boolean(),
        (pairs, sp, steps, p, weighted) => {
          const v = pairs.map(([x]) => x);
          const w = weighted ? pairs.map(([, k]) => k) : null;
          const min = Math.min(0, ...v);
          const max = Math.max(0, ...v);
          if (min === 0 && max === 0) return;
          const s = spec({ ...sp, narrowRange: false });
          const got = mseSearch(v, w, min, max, s, steps, p);
          expect(got).toEqual(mseReference(v, w, min, max, s, steps, p));
        },
      ),
      { seed: 20261207, numRuns: 150 },
    );
  });

  it('a weight of 0 takes a value out of the search', () => {
    // nine values at 0.5 and one at 15, 4-bit unsigned: with the outlier the search keeps a
    // range near [0, 15]; weighted out, the range shrinks to fit the bulk
    const v = [...new Array<number>(9).fill(0.5), 15];
    const w = [...new Array<number>(9).fill(1), 0];
    const s4 = spec({ bits: 4, signed: false, symmetric: false });
    const all = mseSearch(v, null, 0, 15, s4, 95, 2);
    const bulk = mseSearch(v, w, 0, 15, s4, 95, 2);
    expect(all).toEqual(mseReference(v, null, 0, 15, s4, 95, 2));
    expect(bulk).toEqual(mseReference(v, w, 0, 15, s4, 95, 2));
    // weighted out, the bulk is exact from step 0.5 on: [0, 7.5] (i = 50) is the first such
    expect(bulk).toEqual([0, 7.5]);
    expect(all[1]).toBeGreaterThan(14);
  });

  it('the power p of the error counts for weighted samples too', () => {
    // a weighted bulk near 0 and one value at 9.5, 4-bit unsigned: |error| (p = 1) gives up
    // the far value for a finer step; the square (p = 2) does not
    const s4 = spec({ bits: 4, signed: false, symmetric: false });
    const v = [0.5, 1.5, 2.5, 3.5, 9.5];
    const w = [40, 20, 10, 5, 1];
    expect(mseSearch(v, w, 0, 10, s4, 95, 1)).toEqual([0, 7.5]);
    expect(mseSearch(v, w, 0, 10, s4, 95, 2)).toEqual([0, 10]);
    expect(mseSearch(v, w, 0, 10, s4, 95, 1)).toEqual(mseReference(v, w, 0, 10, s4, 95, 1));
  });

  it('an all-zero range is returned as is; an empty sample keeps the widest candidate', () => {
    expect(mseSearch([1, 2], null, 0, 0, spec(), 95, 2)).toEqual([0, 0]);
    // no values: every candidate scores 0, the strict < keeps the first
    expect(mseSearch([], null, -2, 3, spec(), 95, 2)).toEqual([-2, 3]);
    expect(mseSearch([1], [0], -2, 3, spec(), 95, 2)).toEqual([-2, 3]);
  });

  it('per-channel weights search at most 80 candidates, per-tensor weights mseSteps', () => {
    // 4,000 values spread over ±0.1 and one outlier at 1, 4-bit signed: the bulk's rounding
    // error (step²/12, step = max/7) against the outlier's clipping error ((1 − max)²/4,001)
    // is least near max ≈ 0.13, candidate i ≈ 87: out of reach of the 80 per-channel ones
    const n = 4000;
    const v = Float32Array.from({ length: n }, (_, k) => Math.fround((0.2 * ((k * 7919) % n)) / n - 0.1));
    v[0] = 1;
    const s4 = spec({ bits: 4 });
    const t = observeWeight('mse', v, [1, n], s4);
    const c = observeWeight('mse', v, [1, n], { ...s4, granularity: 'per-channel', axis: 0 });
    const pick = (hi: number) => Math.round(100 * (1 - hi));
    expect(pick(t.max[0])).toBeGreaterThanOrEqual(MSE_STEPS_PER_CHANNEL);
    expect(pick(t.max[0])).toBeLessThan(95);
    expect(pick(c.max[0])).toBeLessThan(MSE_STEPS_PER_CHANNEL);
    const [lo80, hi80] = mseSearch(v, null, Math.min(...v), 1, s4, MSE_STEPS_PER_CHANNEL, 2);
    expect([c.min[0], c.max[0]]).toEqual([Math.fround(lo80), Math.fround(hi80)]);
    // and per tensor the option is honoured: 10 candidates reach 0.91 at most
    expect(observeWeight('mse', v, [1, n], s4, { mseSteps: 10 }).max[0]).toBeCloseTo(0.91, 6);
  });
});

describe('observer options: every bound', () => {
  const s: ActivationStats = { batches: [batchOf({ min: -1, max: 1 })] };
  const run = (o: Record<string, number>) => () => observeActivation('minmax', s, spec(), o);
  it.each([
    [{ emaRatio: 0 }, true],
    [{ emaRatio: 0.999 }, true],
    [{ emaRatio: 1 }, /EMA ratio/],
    [{ emaRatio: -0.01 }, /EMA ratio/],
    [{ percentile: 1 }, true],
    [{ percentile: 0.5 }, /percentile/],
    [{ percentile: 1.01 }, /percentile/],
    [{ stdNum: 0.01 }, true],
    [{ stdNum: 0 }, /standard deviations/],
    [{ mseP: 0.5 }, true],
    [{ mseP: 0 }, /p must be positive/],
    [{ mseSteps: 1 }, true],
    [{ mseSteps: 100 }, true],
    [{ mseSteps: 0 }, /step count/],
    [{ mseSteps: 101 }, /step count/],
    [{ mseSteps: 2.5 }, /step count/],
    [{ klBins: 16 }, true],
    [{ klBins: 15 }, /16 bins/],
    [{ klBins: 16.5 }, /16 bins/],
    [{ emaRatio: NaN }, /EMA ratio/],
  ])('%o', (o, ok) => {
    if (ok === true) expect(run(o)).not.toThrow();
    else expect(run(o)).toThrow(ok);
  });
});

describe('weight observers by hand', () => {
  it('ema-quantile: the clip is the centre of the bin where the count reaches 0.99999 of the total', () => {
    // |x| = 1, 0.5, 2 over 2048 bins of [0, 2]: the total is reached in the last bin, whose
    // centre is 2047.5 · 2 / 2048
    const r = observeWeight('ema-quantile', Float32Array.of(-1, 0.5, 2), [3], spec());
    expect([r.min[0], r.max[0]]).toEqual([-1, Math.fround((2047.5 * 2) / 2048)]);
    // 100,000 values at 1 and one at 8: 1 in 100,001 lies above the 0.99999 quantile, so the
    // clip is the centre of 1's bin (1 / (8/2048) = bin 256)
    const v = new Float32Array(100_001).fill(1);
    v[7] = 8;
    const q = observeWeight('ema-quantile', v, [v.length], spec());
    expect(q.max[0]).toBe(Math.fround((256.5 * 8) / EMA_QUANTILE_BINS));
    expect(q.min[0]).toBe(1);
  });

  it('ema-quantile keeps the range when the clip would turn it around, and zeros give [0, 0]', () => {
    // both values in the last |x| bin: clip 2047.5/2048 · 1.0001 lies below the min 1
    const r = observeWeight('ema-quantile', Float32Array.of(1, 1.0001), [2], spec());
    expect([r.min[0], r.max[0]]).toEqual([1, Math.fround(1.0001)]);
    const z = observeWeight('ema-quantile', new Float32Array(4), [4], spec());
    expect([z.min[0], z.max[0]]).toEqual([0, 0]);
  });

  it('clipstd: one value has no spread; the spread is the unbiased one', () => {
    const one = observeWeight('clipstd', Float32Array.of(3), [1], spec());
    expect([one.min[0], one.max[0]]).toEqual([3, 3]);
    // [0, 4]: mean 2, unbiased std √8; k = 1 → 2 ± 2.828 is wider than [0, 4]
    const two = observeWeight('clipstd', Float32Array.of(0, 4), [2], spec(), { stdNum: 1 });
    expect(two.min[0]).toBe(Math.fround(2 - Math.sqrt(8)));
    expect(two.max[0]).toBe(Math.fround(2 + Math.sqrt(8)));
  });

  it('clipstd over three values: the unbiased spread divides by n − 1', () => {
    // [0, 3, 6]: mean 3, Σ(x − mean)² = 18, variance 18 / 2 = 9, std 3; k = 2 → [−3, 9]
    const r = observeWeight('clipstd', Float32Array.of(0, 3, 6), [3], spec(), { stdNum: 2 });
    expect([r.min[0], r.max[0]]).toEqual([-3, 9]);
  });

  it('a per-tensor spec reads the whole tensor whatever its axis says', () => {
    const w = Float32Array.of(-1, 2, 3, -4);
    const r = observeWeight('minmax', w, [2, 2], { ...spec(), axis: 0 });
    expect([Array.from(r.min), Array.from(r.max)]).toEqual([[-4], [3]]);
  });

  it('per-channel along a middle axis gathers each channel’s runs', () => {
    // [2, 3, 2] along axis 1: channel c holds elements 2c, 2c + 1, 6 + 2c, 7 + 2c
    const w = Float32Array.from({ length: 12 }, (_, k) => k);
    const r = observeWeight('percentile', w, [2, 3, 2], spec({ granularity: 'per-channel', axis: 1 }), {
      percentile: 1,
    });
    expect(Array.from(r.min)).toEqual([0, 2, 4]);
    expect(Array.from(r.max)).toEqual([7, 9, 11]);
  });

  it('percentile: numpy’s linear interpolation between the two nearest order statistics', () => {
    // sorted [0, 10, 20, 30]: q = 0.9 → position 2.7 → 20 + 0.7·10 = 27; 1 - q → 0.3 → 3
    const r = observeWeight('percentile', Float32Array.of(30, 0, 20, 10), [4], spec(), { percentile: 0.9 });
    expect(r.min[0]).toBeCloseTo(3, 5);
    expect(r.max[0]).toBeCloseTo(27, 5);
    // q = 1: the largest value itself
    const top = observeWeight('percentile', Float32Array.of(30, 0, 20, 10), [4], spec(), { percentile: 1 });
    expect([top.min[0], top.max[0]]).toEqual([0, 30]);
  });

  it('kl: the entropy threshold of the |x| histogram with max(256, 4·levels) bins and at most 64 candidates', () => {
    const v = new Float32Array(3000);
    for (let k = 0; k < v.length; k++) v[k] = Math.fround(((k * 7919) % 3001) / 3000 - 0.5) ** 3 * 8;
    let absMax = 0;
    for (const x of v) absMax = Math.max(absMax, Math.abs(x));
    const abs = v.map(Math.abs);
    for (const [bits, bins] of [
      [4, 256],
      [8, 512],
    ] as const) {
      const levels = 2 ** (bits - 1);
      const stride = Math.ceil((bins - levels) / 64);
      const t = klThreshold(histogramOf(abs, 0, absMax, bins), absMax, levels, stride);
      const r = observeWeight('kl', v, [v.length], spec({ bits }));
      expect([r.min[0], r.max[0]], `${bits} bits`).toEqual([Math.fround(-t), Math.fround(t)]);
    }
    // non-negative values: [0, t]; all zeros: [0, 0]
    const pos = observeWeight('kl', abs, [abs.length], spec({ signed: false }));
    expect(pos.min[0]).toBe(0);
    expect(pos.max[0]).toBeGreaterThan(0);
    const z = observeWeight('kl', new Float32Array(8), [8], spec());
    expect([z.min[0], z.max[0]]).toEqual([0, 0]);
  });

  it('per-channel ranges along the last axis of a 3-D tensor', () => {
    // [2, 2, 3] along axis 2: channel c holds elements c, 3 + c, 6 + c, 9 + c
    const w = Float32Array.from({ length: 12 }, (_, k) => (k % 3 === 1 ? -k : k));
    const r = observeWeight('minmax', w, [2, 2, 3], spec({ granularity: 'per-channel', axis: 2 }));
    expect(Array.from(r.min)).toEqual([0, -10, 2]);
    expect(Array.from(r.max)).toEqual([9, -1, 11]);
  });
});

describe('activation observers by hand', () => {
  it('percentile stays inside the observed min and max when the histogram range is wider', () => {
    // the histogram spans [-10, 10] but the batch saw [-1, 2]: quantiles clamp to it
    const hist = new Float64Array(20).fill(1);
    const s: ActivationStats = { batches: [batchOf({ min: -1, max: 2, hist })], histLo: -10, histHi: 10 };
    const r = observeActivation('percentile', s, spec(), { percentile: 0.99 });
    expect([r.min[0], r.max[0]]).toEqual([-1, 2]);
  });

  it('clipstd: one element has no spread, none is refused, and rounding never gives a negative variance', () => {
    const one = observeActivation(
      'clipstd',
      { batches: [batchOf({ min: 2, max: 2, sum: 2, sumSq: 4, count: 1 })] },
      spec(),
    );
    expect([one.min[0], one.max[0]]).toEqual([2, 2]);
    expect(() => observeActivation('clipstd', { batches: [batchOf({ sum: 0, sumSq: 0, count: 0 })] }, spec())).toThrow(
      /no elements/,
    );
    // three times 0.1: sumSq − sum·mean is a hair below 0 in floating point
    const flat = observeActivation(
      'clipstd',
      { batches: [batchOf({ min: 0.1, max: 0.1, sum: 0.30000000000000004, sumSq: 0.030000000000000006, count: 3 })] },
      spec(),
    );
    expect([flat.min[0], flat.max[0]]).toEqual([Math.fround(0.1), Math.fround(0.1)]);
  });

  it('clipstd over two batches: the moments add up, the spread is the unbiased one', () => {
    // 0, 3 | 6: n 3, mean 3, Σx² 45, variance (45 − 9·3) / 2 = 9, std 3
    const stats: ActivationStats = {
      batches: [
        batchOf({ min: 0, max: 3, sum: 3, sumSq: 9, count: 2 }),
        batchOf({ min: 6, max: 6, sum: 6, sumSq: 36, count: 1 }),
      ],
    };
    const range = (stdNum: number) => {
      const r = observeActivation('clipstd', stats, spec(), { stdNum });
      return [r.min[0], r.max[0]];
    };
    expect(range(2)).toEqual([-3, 9]);
    // k = 0.5 → [1.5, 4.5], inside the data: the range keeps [0, 6]
    expect(range(0.5)).toEqual([0, 6]);
  });

  it('ema-quantile clips a lone outlier on the negative side to where the mass ends', () => {
    // a million values in [0, 1), one in [−10, −9): |x| spans [0, 10] in 2048 bins, the million
    // spread evenly over the first 204.8 of them (4,882.8 each); 0.99999 of the total is reached
    // in bin 204, so the clip is its centre, 204.5 · 10 / 2048, on both sides
    const hist = new Float64Array(11);
    hist[0] = 1;
    hist[10] = 1e6;
    const r = observeActivation(
      'ema-quantile',
      { batches: [batchOf({ min: -10, max: 1, hist })], histLo: -10, histHi: 1 },
      spec(),
    );
    const clip = (204.5 * 10) / 2048;
    expect(r.min[0]).toBeCloseTo(-clip, 9);
    expect(r.max[0]).toBeCloseTo(clip, 9);
  });

  it('ema with ratio 0 is the last batch; ema-quantile keeps an all-zero batch as it is', () => {
    const s: ActivationStats = {
      batches: [batchOf({ min: -4, max: 4 }), batchOf({ min: -1, max: 3 })],
    };
    const r = observeActivation('ema-minmax', s, spec(), { emaRatio: 0 });
    expect([r.min[0], r.max[0]]).toEqual([-1, 3]);
    const zero: ActivationStats = {
      batches: [batchOf({ min: 0, max: 0, hist: new Float64Array(8) })],
      histLo: 0,
      histHi: 1,
    };
    const z = observeActivation('ema-quantile', zero, spec());
    expect([z.min[0], z.max[0]]).toEqual([0, 0]);
  });

  it('refuses per-channel activations, no batches, and a histogram missing from one batch', () => {
    const b = batchOf({ min: -1, max: 1, hist: F([1, 1]) });
    expect(() => observeActivation('minmax', { batches: [b] }, spec({ granularity: 'per-channel', axis: 1 }))).toThrow(
      /^Activations are quantized per tensor; a per-channel activation scheme is not supported\.$/,
    );
    expect(() => observeActivation('minmax', { batches: [] }, spec())).toThrow(/No calibration batches/);
    const partial: ActivationStats = { batches: [b, batchOf({ min: -1, max: 1 })], histLo: -1, histHi: 1 };
    expect(() => observeActivation('percentile', partial, spec())).toThrow(
      /The percentile observer needs histograms, but the calibration collected none/,
    );
  });

  it('mse places bin centres on a histogram range that does not start at 0', () => {
    // 4 bins over [-2, 4]: width 1.5, centres -1.25, 0.25, 1.75, 3.25
    const hist = F([1, 6, 2, 1]);
    const s: ActivationStats = { batches: [batchOf({ min: -2, max: 4, hist })], histLo: -2, histHi: 4 };
    const s3 = spec({ bits: 3, signed: true, symmetric: false });
    const want = mseSearch([-1.25, 0.25, 1.75, 3.25], [1, 6, 2, 1], -2, 4, s3, 95, 2);
    const r = observeActivation('mse', s, s3);
    expect([r.min[0], r.max[0]]).toEqual([Math.fround(want[0]), Math.fround(want[1])]);
  });

  it('mse evaluates the bin centres weighted by the pooled counts', () => {
    // two batches over [0, 4] in 4 bins: centres 0.5, 1.5, 2.5, 3.5
    const a = F([5, 0, 1, 0]);
    const b = F([1, 2, 0, 1]);
    const s: ActivationStats = {
      batches: [batchOf({ min: 0, max: 4, hist: a }), batchOf({ min: 0.2, max: 3.9, hist: b })],
      histLo: 0,
      histHi: 4,
    };
    const s4 = spec({ bits: 2, signed: false, symmetric: false });
    const want = mseSearch([0.5, 1.5, 2.5, 3.5], [6, 2, 1, 1], 0, 4, s4, 95, 2);
    const r = observeActivation('mse', s, s4);
    expect([r.min[0], r.max[0]]).toEqual([Math.fround(want[0]), Math.fround(want[1])]);
    // ema-mse: each batch searched over its own min/max, then 0.9 · first + 0.1 · second
    const one = mseSearch([0.5, 2.5], [5, 1], 0, 4, s4, 95, 2);
    const two = mseSearch([0.5, 1.5, 3.5], [1, 2, 1], 0.2, 3.9, s4, 95, 2);
    const e = observeActivation('ema-mse', s, s4);
    expect(e.max[0]).toBe(Math.fround(0.9 * one[1] + 0.1 * two[1]));
    expect(e.min[0]).toBe(Math.fround(0.9 * one[0] + 0.1 * two[0]));
  });

  it('kl folds the pooled histogram to |x| with klBins bins and NVIDIA’s zero-bin rule', () => {
    // 16 bins of 0.5 over [-5, 3]: a bump at 0.5 and two outliers, at -5 and at 3
    const a = F([1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 40, 90, 40, 2, 0, 1]);
    const b = F([0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 50, 80, 50, 3, 0, 0]);
    const s: ActivationStats = {
      batches: [batchOf({ min: -5, max: 3, hist: a }), batchOf({ min: -4, max: 2.5, hist: b })],
      histLo: -5,
      histHi: 3,
    };
    const bins = 64;
    const folded = foldAbsHistogram(sumHistograms([a, b]), -5, 3, bins, 5);
    const t = klThreshold(folded, 5, 128, 1, { zeroBin: 'neighbour', startBin: Math.round((128 * bins) / 2048) });
    const r = observeActivation('kl', s, spec(), { klBins: bins });
    expect([r.min[0], r.max[0]]).toEqual([Math.fround(-t), Math.fround(t)]);
    // 8 bits: 128 levels, not fewer than the 64 bins: nothing to search
    expect(t).toBe(5);
    // 4 bits: 8 levels of 64 bins; the search cuts the outliers away
    const t4 = klThreshold(folded, 5, 8, 1, { zeroBin: 'neighbour', startBin: 4 });
    const r4 = observeActivation('kl', s, spec({ bits: 4 }), { klBins: bins });
    expect([r4.min[0], r4.max[0]]).toEqual([Math.fround(-t4), Math.fround(t4)]);
    expect(t4).toBeLessThan(5);
  });

  it('kl on a range at zero is [0, 0], and on non-negative data [0, t]', () => {
    const zero: ActivationStats = { batches: [batchOf({ min: 0, max: 0, hist: F([3, 0]) })], histLo: 0, histHi: 1 };
    const z = observeActivation('kl', zero, spec());
    expect([z.min[0], z.max[0]]).toEqual([0, 0]);
    const hist = F([9, 5, 3, 2, 1, 1, 0, 1]);
    const pos: ActivationStats = { batches: [batchOf({ min: 0, max: 8, hist })], histLo: 0, histHi: 8 };
    const r = observeActivation('kl', pos, spec({ bits: 2, signed: false }), { klBins: 16 });
    expect(r.min[0]).toBe(0);
    expect(r.max[0]).toBeGreaterThan(0);
  });
});

describe('the registry', () => {
  it('refuses "imported" and unknown names with what to do; calibration needs skip "imported"', () => {
    expect(() => observerEntry('imported')).toThrow(/imported quantized model.*choose another observer/);
    expect(() => observerEntry('median' as never)).toThrow(/Unknown observer "median". Use one of: minmax,/);
    expect(calibrationNeeds(['imported', 'minmax'])).toEqual({ histogram: false, moments: false });
    expect(calibrationNeeds(['imported', 'clipstd', 'kl'])).toEqual({ histogram: true, moments: true });
  });
});
