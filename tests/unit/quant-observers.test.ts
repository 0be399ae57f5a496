import { describe, expect, it } from 'vitest';
import { QpError } from '../../src/lib/util/errors.ts';
import { histogramOf } from '../../src/lib/quant/histogram.ts';
import {
  DEFAULT_OBSERVER_OPTIONS,
  klThreshold,
  mseSearch,
  observeActivation,
  calibrationNeeds,
  OBSERVERS,
  observeWeight,
} from '../../src/lib/quant/observers.ts';
import { OBSERVER_NAMES, type ActivationStats, type BatchStats } from '../../src/lib/quant/types.ts';
import { gaussian, laplace, spec, uniform } from '../support/quant-helpers.ts';

/** BatchStats of a data batch with a histogram over [lo, hi]. */
function batch(data: Float32Array, lo: number, hi: number, bins = 2048): BatchStats {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sumSq = 0;
  for (const v of data) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
    sumSq += v * v;
  }
  return { min, max, sum, sumSq, count: data.length, hist: histogramOf(data, lo, hi, bins) };
}

/** ActivationStats over several data batches sharing the global range. */
function statsOf(batches: Float32Array[], bins = 2048): ActivationStats {
  let lo = Infinity;
  let hi = -Infinity;
  for (const b of batches)
    for (const v of b) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  return { batches: batches.map((b) => batch(b, lo, hi, bins)), histLo: lo, histHi: hi };
}

const f32 = Math.fround;

describe('observer registry', () => {
  it('has one entry per observer name, named after its key', () => {
    expect(Object.keys(OBSERVERS).sort()).toEqual([...OBSERVER_NAMES].sort());
    for (const [k, e] of Object.entries(OBSERVERS)) expect(e.name).toBe(k);
  });

  it('says what calibration must collect: histograms for the histogram observers, moments for clipstd', () => {
    const need = OBSERVER_NAMES.filter((n) => OBSERVERS[n].needs === 'histogram');
    expect(need.sort()).toEqual(['ema-mse', 'ema-quantile', 'kl', 'mse', 'percentile']);
    expect(calibrationNeeds(['minmax', 'ema-minmax'])).toEqual({ histogram: false, moments: false });
    expect(calibrationNeeds(['minmax', 'clipstd'])).toEqual({ histogram: false, moments: true });
    expect(calibrationNeeds(['kl', 'minmax'])).toEqual({ histogram: true, moments: false });
    expect(calibrationNeeds([])).toEqual({ histogram: false, moments: false });
    expect(() => calibrationNeeds(['nope' as never])).toThrow(/Unknown observer "nope"/);
  });

  it('every observer runs on exactly what its entry asks calibration for', () => {
    const data = [gaussian(4096, 1, 0.5), gaussian(4096, 2, 1.5)];
    for (const name of OBSERVER_NAMES) {
      const full = statsOf(data);
      const { histogram, moments } = calibrationNeeds([name]);
      // drop what was not asked for: no histograms, moments poisoned with NaN
      const stats: ActivationStats = {
        batches: full.batches.map((b) => ({
          min: b.min,
          max: b.max,
          sum: moments ? b.sum : NaN,
          sumSq: moments ? b.sumSq : NaN,
          count: moments ? b.count : NaN,
          ...(histogram ? { hist: b.hist } : {}),
        })),
        ...(histogram ? { histLo: full.histLo, histHi: full.histHi } : {}),
      };
      const r = observeActivation(name, stats, spec({ signed: true }));
      expect(Number.isFinite(r.min[0]) && Number.isFinite(r.max[0]), name).toBe(true);
      expect(r.min[0], name).toBeLessThan(r.max[0]);
      if (histogram)
        expect(() =>
          observeActivation(name, { ...stats, batches: stats.batches.map(({ hist: _h, ...b }) => b) }, spec()),
        ).toThrow(/needs histograms/);
    }
  });
});

describe('minmax', () => {
  it('weights: per-channel min/max along axis 0 and per-tensor', () => {
    const w = Float32Array.of(-1, 0, 2, 3, 0.5, 1, 1.5, 0.25);
    const r = observeWeight('minmax', w, [2, 4], spec({ granularity: 'per-channel', axis: 0 }));
    expect(Array.from(r.min)).toEqual([-1, 0.25]);
    expect(Array.from(r.max)).toEqual([3, 1.5]);
    const t = observeWeight('minmax', w, [2, 4], spec());
    expect([t.min[0], t.max[0]]).toEqual([-1, 3]);
  });

  it('weights: per-channel along axis 1 (MatMul [in, out])', () => {
    const w = Float32Array.of(1, -2, 3, 4, 5, -6); // [2, 3]: columns (1,4) (-2,5) (3,-6)
    const r = observeWeight('minmax', w, [2, 3], spec({ granularity: 'per-channel', axis: 1 }));
    expect(Array.from(r.min)).toEqual([1, -2, -6]);
    expect(Array.from(r.max)).toEqual([4, 5, 3]);
  });

  it('activations: min of batch mins, max of batch maxes', () => {
    const s = statsOf([Float32Array.of(-1, 0, 2), Float32Array.of(-0.5, 3)]);
    const r = observeActivation('minmax', s, spec());
    expect([r.min[0], r.max[0]]).toEqual([-1, 3]);
  });
});

describe('ema-minmax', () => {
  it('initializes on the first batch then mixes 0.9 old + 0.1 new (by hand)', () => {
    // batches (min, max): (-1, 2), (-2, 4), (0, 1)
    // after 2: min = 0.9*-1 + 0.1*-2 = -1.1, max = 0.9*2 + 0.1*4 = 2.2
    // after 3: min = 0.9*-1.1 + 0.1*0 = -0.99, max = 0.9*2.2 + 0.1*1 = 2.08
    const s: ActivationStats = {
      batches: [
        { min: -1, max: 2, sum: 0, sumSq: 0, count: 1 },
        { min: -2, max: 4, sum: 0, sumSq: 0, count: 1 },
        { min: 0, max: 1, sum: 0, sumSq: 0, count: 1 },
      ],
    };
    const r = observeActivation('ema-minmax', s, spec());
    expect(r.min[0]).toBe(f32(-0.99));
    expect(r.max[0]).toBe(f32(2.08));
    const r2 = observeActivation('ema-minmax', s, spec(), { emaRatio: 0.5 });
    // ratio 0.5: (-1,2) -> (-1.5, 3) -> (-0.75, 2)
    expect([r2.min[0], r2.max[0]]).toEqual([-0.75, 2]);
  });

  it('equals minmax on weights', () => {
    const w = uniform(100, 1);
    const a = observeWeight('ema-minmax', w, [100], spec());
    const b = observeWeight('minmax', w, [100], spec());
    expect(a).toEqual(b);
  });
});

describe('percentile', () => {
  it('clips at the q and 1-q quantiles of a uniform histogram', () => {
    // 10000 bins over [0, 1], one count each: quantile(q) = q exactly
    const hist = new Float64Array(10_000).fill(1);
    const s: ActivationStats = {
      batches: [{ min: 0, max: 1, sum: 5000, sumSq: 0, count: 10_000, hist }],
      histLo: 0,
      histHi: 1,
    };
    const r = observeActivation('percentile', s, spec());
    expect(r.min[0]).toBeCloseTo(1e-4, 9);
    expect(r.max[0]).toBeCloseTo(0.9999, 7);
    const r2 = observeActivation('percentile', s, spec(), { percentile: 0.99 });
    expect(r2.min[0]).toBeCloseTo(0.01, 7);
    expect(r2.max[0]).toBeCloseTo(0.99, 7);
  });

  it('sums the histograms of all batches', () => {
    // batch 1 all in [0, 0.5), batch 2 all in [0.5, 1]: pooled median = 0.5
    const lo = new Float64Array(2);
    lo[0] = 10;
    const hi = new Float64Array(2);
    hi[1] = 10;
    const s: ActivationStats = {
      batches: [
        { min: 0, max: 0.5, sum: 0, sumSq: 0, count: 10, hist: lo },
        { min: 0.5, max: 1, sum: 0, sumSq: 0, count: 10, hist: hi },
      ],
      histLo: 0,
      histHi: 1,
    };
    expect(observeActivation('percentile', s, spec(), { percentile: 0.75 }).max[0]).toBeCloseTo(0.75, 7);
  });

  it('weights: exact quantiles with linear interpolation', () => {
    const w = new Float32Array(101);
    for (let i = 0; i <= 100; i++) w[i] = i; // quantile(q) = 100q
    const r = observeWeight('percentile', w, [101], spec(), { percentile: 0.95 });
    expect(r.min[0]).toBeCloseTo(5, 4);
    expect(r.max[0]).toBeCloseTo(95, 4);
  });
});

describe('clipstd', () => {
  it('activations: MQBench rule, [min(mean - k·std, min), max(mean + k·std, max)] from pooled sums', () => {
    // n = 1000, mean 2, unbiased variance 4: sum = 2000, sumSq = 999*4 + 1000*4 = 7996
    const s: ActivationStats = { batches: [{ min: -20, max: 5, sum: 2000, sumSq: 7996, count: 1000 }] };
    const r = observeActivation('clipstd', s, spec(), { stdNum: 3 });
    expect(r.min[0]).toBe(-20); // 2 - 3*2 = -4 lies inside: the extreme is kept, never clipped
    expect(r.max[0]).toBeCloseTo(8, 5); // 2 + 3*2 = 8 > max 5: widened
    // default k = 2.6 (MQBench std_scale): 2 + 5.2
    const d = observeActivation('clipstd', s, spec());
    expect(d.max[0]).toBeCloseTo(7.2, 5);
    // pooled over batches: two halves give the same range as one batch
    const halves: ActivationStats = {
      batches: [
        { min: -20, max: 4, sum: 1000, sumSq: 3998, count: 500 },
        { min: -3, max: 5, sum: 1000, sumSq: 3998, count: 500 },
      ],
    };
    const h = observeActivation('clipstd', halves, spec(), { stdNum: 3 });
    expect(h.min[0]).toBe(-20);
    expect(h.max[0]).toBeCloseTo(8, 5);
  });

  it('weights: per-channel min/max widened to mean ± k·std (unbiased)', () => {
    // [1..5]: mean 3, unbiased std sqrt(2.5); k = 1 -> 3 ± 1.58 lies inside [1, 5]: min/max kept
    const w = Float32Array.of(1, 2, 3, 4, 5, 10, 10, 10, 10, 10);
    const r = observeWeight('clipstd', w, [2, 5], spec({ granularity: 'per-channel', axis: 0 }), { stdNum: 1 });
    expect([r.min[0], r.max[0]]).toEqual([1, 5]);
    expect([r.min[1], r.max[1]]).toEqual([10, 10]);
    // k = 3: 3 ± 4.74 is wider than [1, 5]
    const d = observeWeight('clipstd', w.subarray(0, 5), [5], spec(), { stdNum: 3 });
    expect(d.min[0]).toBeCloseTo(3 - 3 * Math.sqrt(2.5), 5);
    expect(d.max[0]).toBeCloseTo(3 + 3 * Math.sqrt(2.5), 5);
  });
});

describe('mse', () => {
  it('mseSearch follows MQBench candidates (1 - 0.01 i) and picks the lowest error', () => {
    // values {0, 1} with 4-bit unsigned asymmetric: candidate max m gives s = m/15;
    // max 1.0 puts 1 on the grid (error 0) so i = 0 wins
    const [lo, hi] = mseSearch([0, 1], null, 0, 1, spec({ bits: 4, signed: false, symmetric: false }), 95, 2);
    expect([lo, hi]).toEqual([0, 1]);
  });

  it('on uniform data keeps the clip close to the max (weights and activations)', () => {
    const u = uniform(20_000, 11);
    const w = observeWeight('mse', u, [u.length], spec());
    const absMax = Math.max(-w.min[0], w.max[0]);
    expect(absMax).toBeGreaterThan(0.95);
    const a = observeActivation('mse', statsOf([u]), spec());
    expect(Math.max(-a.min[0], a.max[0])).toBeGreaterThan(0.95);
  });

  it('on heavy-tailed Laplace data clips well below the max', () => {
    const x = laplace(20_000, 5);
    let absMax = 0;
    for (const v of x) absMax = Math.max(absMax, Math.abs(v));
    const s4 = spec({ bits: 4 });
    const w = observeWeight('mse', x, [x.length], s4);
    const wClip = Math.max(-w.min[0], w.max[0]);
    expect(wClip).toBeLessThan(0.7 * absMax);
    expect(wClip).toBeGreaterThan(0.1 * absMax);
    const a = observeActivation('mse', statsOf([x]), s4);
    const aClip = Math.max(-a.min[0], a.max[0]);
    expect(aClip).toBeLessThan(0.7 * absMax);
    // histogram and exact evaluations agree to a few grid steps
    expect(Math.abs(aClip - wClip) / wClip).toBeLessThan(0.1);
    // 8 bits clip less than 4 bits
    const w8 = observeWeight('mse', x, [x.length], spec());
    expect(Math.max(-w8.min[0], w8.max[0])).toBeGreaterThan(wClip);
  });

  it('ema-mse applies the EMA to per-batch optima', () => {
    const b1 = laplace(20_000, 1);
    const b2 = laplace(20_000, 2);
    const s = statsOf([b1, b2]);
    const s4 = spec({ bits: 4 });
    const one = (b: BatchStats) => observeActivation('mse', { batches: [b], histLo: s.histLo, histHi: s.histHi }, s4);
    const r1 = one(s.batches[0]);
    const r2 = one(s.batches[1]);
    const e = observeActivation('ema-mse', s, s4);
    expect(e.max[0]).toBeCloseTo(0.9 * r1.max[0] + 0.1 * r2.max[0], 5);
    expect(e.min[0]).toBeCloseTo(0.9 * r1.min[0] + 0.1 * r2.min[0], 5);
  });
});

describe('ema-quantile', () => {
  it('drops rare outliers (threshold 0.99999) and applies the EMA', () => {
    const b1 = uniform(200_000, 21);
    b1[123] = 100; // one outlier in 200k: above the 0.99999 quantile
    const b2 = uniform(200_000, 22);
    const s = statsOf([b1, b2]);
    // batch 1: |x| histogram over [0, 100], bin 0.0488; the 0.99999 quantile of |x| is ~1
    // -> clip (i + 0.5) * 100/2048 ~ 1.0 ; batch 2: clip ~ 0.99999 * 1 -> max ~ 1
    const r = observeActivation('ema-quantile', s, spec());
    expect(r.max[0]).toBeGreaterThan(0.97);
    expect(r.max[0]).toBeLessThan(1.05);
    expect(r.min[0]).toBeGreaterThan(-1.0001);
    expect(r.min[0]).toBeLessThan(-0.97);
    // minmax would keep the outlier
    expect(observeActivation('minmax', s, spec()).max[0]).toBe(100);
  });
});

describe('kl (TensorRT entropy)', () => {
  it('on a Gaussian picks a threshold below the max and above 2 sigma', () => {
    const g = gaussian(1_000_000, 9);
    const s = statsOf([g]);
    const absMax = Math.max(-s.histLo!, s.histHi!);
    const r = observeActivation('kl', s, spec());
    expect(r.min[0]).toBe(-r.max[0]);
    expect(r.max[0]).toBeGreaterThan(2);
    expect(r.max[0]).toBeLessThan(absMax * 0.95);
  });

  it('returns [0, t] on non-negative data', () => {
    const g = gaussian(50_000, 10);
    for (let i = 0; i < g.length; i++) g[i] = Math.abs(g[i]);
    const r = observeActivation('kl', statsOf([g]), spec({ signed: false }));
    expect(r.min[0]).toBe(0);
    expect(r.max[0]).toBeGreaterThan(2);
  });

  it('keeps the full range when the histogram has no tail to clip', () => {
    // all mass in 4 spikes at the top of the range: clipping anything puts mass in the
    // outlier bin, so the whole range (2048 bins) must win
    const h = new Float64Array(2048);
    h[2047] = 1000;
    h[0] = 1000;
    expect(klThreshold(h, 2048, 128)).toBe(2048);
    // levels >= bins: nothing to search
    expect(klThreshold(new Float64Array(64).fill(1), 1, 128)).toBe(1);
  });

  it('weights: per-channel symmetric thresholds within (0, max|x|]', () => {
    const w = new Float32Array(2 * 4096);
    w.set(gaussian(4096, 1), 0);
    w.set(gaussian(4096, 2, 0.1), 4096);
    const r = observeWeight('kl', w, [2, 4096], spec({ granularity: 'per-channel', axis: 0 }));
    expect(r.max[1]).toBeLessThan(r.max[0]);
    expect(r.max[0]).toBeGreaterThan(1.5);
    expect(r.max[1]).toBeGreaterThan(0.15);
    expect(Array.from(r.min)).toEqual(Array.from(r.max).map((v) => -v));
  });
});

describe('errors and options', () => {
  it('rejects per-channel activations, missing histograms and empty stats', () => {
    const s = statsOf([Float32Array.of(1, 2)]);
    expect(() => observeActivation('minmax', s, spec({ granularity: 'per-channel', axis: 1 }))).toThrow(QpError);
    const noHist: ActivationStats = { batches: [{ min: 0, max: 1, sum: 0, sumSq: 0, count: 1 }] };
    expect(() => observeActivation('kl', noHist, spec())).toThrow(/histograms/);
    expect(() => observeActivation('minmax', { batches: [] }, spec())).toThrow(QpError);
    expect(() => observeActivation('minmax', s, spec(), { emaRatio: 1.5 })).toThrow(/EMA ratio/);
  });

  it('exports the MQBench defaults', () => {
    expect(DEFAULT_OBSERVER_OPTIONS).toEqual({
      emaRatio: 0.9,
      percentile: 0.9999,
      stdNum: 2.6,
      mseP: 2,
      mseSteps: 95,
      klBins: 2048,
    });
  });

  it('every observer returns a finite range on weights and activations', () => {
    const x = gaussian(5000, 4);
    const s = statsOf([x.subarray(0, 2500), x.subarray(2500)]);
    for (const name of OBSERVER_NAMES) {
      const w = observeWeight(name, x, [5, 1000], spec({ granularity: 'per-channel', axis: 0 }));
      expect(w.min.length, name).toBe(5);
      const a = observeActivation(name, s, spec());
      for (const v of [...w.min, ...w.max, a.min[0], a.max[0]]) expect(Number.isFinite(v), name).toBe(true);
      expect(a.min[0] <= a.max[0], name).toBe(true);
    }
  });
});
