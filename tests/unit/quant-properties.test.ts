/**
 * Invariants of the quantizer and the observers that hold for every input (fast-check):
 * - inside the grid's range, fake-quantization moves a value by at most half a step;
 *   min/max ranges of signed or asymmetric grids cover the data to within half a step;
 * - fake-quantization is idempotent, monotone, keeps 0 exact, and equals quantizeToInt
 *   followed by dequantize bit for bit; per-channel is per-tensor on each channel;
 * - observer ranges: min/max holds every value; the clipping observers stay inside it
 *   (KL inside ±max|x|); ClipStd never clips and is mean ± k·std united with min/max.
 * The float32 rounding of x/s and q·s allows 2^-23 of |x| + s beyond s/2 (quantizer.ts header).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  computeQParams,
  dequantize,
  fakeQuantize,
  fakeQuantizeValue,
  quantizeToInt,
} from '../../src/lib/quant/quantizer.ts';
import { observeActivation, observeWeight } from '../../src/lib/quant/observers.ts';
import { histogramOf } from '../../src/lib/quant/histogram.ts';
import { roundHalfToEven } from '../../src/lib/quant/round.ts';
import type { ActivationStats, QParams, QuantSpec } from '../../src/lib/quant/types.ts';

const values = (maxLength = 64) =>
  fc.float32Array({ noNaN: true, noDefaultInfinity: true, min: -1e4, max: 1e4, minLength: 1, maxLength });

const specArb = fc.record({
  bits: fc.integer({ min: 2, max: 16 }),
  signed: fc.boolean(),
  symmetric: fc.boolean(),
  narrowRange: fc.boolean(),
  granularity: fc.constant('per-tensor' as const),
  axis: fc.constant(-1),
  powerOfTwo: fc.boolean(),
});

function minMax(v: Float32Array): { min: Float32Array; max: Float32Array } {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  return { min: Float32Array.of(lo), max: Float32Array.of(hi) };
}

/** The real values the grid reaches: [(qmin − zp)·s, (qmax − zp)·s]. */
const gridRange = (qp: QParams, c = 0) => [
  (qp.qmin - qp.zeroPoint[c]) * qp.scale[c],
  (qp.qmax - qp.zeroPoint[c]) * qp.scale[c],
];
const slack = (x: number, s: number) => 2 ** -23 * (Math.abs(x) + s);

describe('fake-quantization (property)', () => {
  it('inside the grid range every value moves by at most half a step; outside it goes to the nearest end', () => {
    fc.assert(
      fc.property(values(), specArb, (v, spec) => {
        const qp = computeQParams(minMax(v), spec);
        const s = qp.scale[0];
        const [lo, hi] = gridRange(qp);
        const fq = fakeQuantize(v, [v.length], qp);
        v.forEach((x, i) => {
          if (x >= lo && x <= hi) expect(Math.abs(fq[i] - x)).toBeLessThanOrEqual(s / 2 + slack(x, s));
          // (=== so that -0 and 0 compare equal)
          else expect(fq[i] === Math.fround(x < lo ? lo : hi)).toBe(true);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('min/max ranges of signed or asymmetric grids (no power-of-two rounding) cover the data to within half a step', () => {
    fc.assert(
      fc.property(
        values(),
        specArb.filter((s) => !s.powerOfTwo && (s.signed || !s.symmetric)),
        (v, spec) => {
          const { min, max } = minMax(v);
          const qp = computeQParams({ min, max }, spec);
          const s = qp.scale[0];
          // the grid's far end is (qmax − qmin)·s from its near one, and s is a float32: its
          // rounding (relative 2^-24) moves that end by up to the data's span times 2^-24
          const end = 2 ** -24 * (max[0] - min[0]);
          const fq = fakeQuantize(v, [v.length], qp);
          v.forEach((x, i) => expect(Math.abs(fq[i] - x)).toBeLessThanOrEqual(s / 2 + slack(x, s) + end));
        },
      ),
      {
        numRuns: 300,
        // found by a random run: 10-bit asymmetric unsigned over ±10,000, 2e-5 past the bound without `end`
        examples: [
          [
            Float32Array.from([-9999.9814453125, 9999.982421875, 0]),
            {
              bits: 10,
              signed: false,
              symmetric: false,
              narrowRange: false,
              granularity: 'per-tensor',
              axis: -1,
              powerOfTwo: false,
            },
          ],
        ],
      },
    );
  });

  it('is idempotent, monotone, keeps 0 exact, and lands on the integer grid', () => {
    fc.assert(
      fc.property(values(), specArb, (v, spec) => {
        const qp = computeQParams(minMax(v), spec);
        const s = qp.scale[0];
        const zp = qp.zeroPoint[0];
        const fq = fakeQuantize(v, [v.length], qp);
        expect(fakeQuantize(fq, [fq.length], qp)).toEqual(fq);
        expect(fakeQuantizeValue(0, qp) === 0).toBe(true);
        for (const y of fq) {
          const q = roundHalfToEven(Math.fround(y / s));
          expect(q).toBeGreaterThanOrEqual(qp.qmin - zp);
          expect(q).toBeLessThanOrEqual(qp.qmax - zp);
          expect(Math.fround(q * s)).toBe(y);
        }
        const order = Array.from(v.keys()).sort((a, b) => v[a] - v[b]);
        for (let k = 1; k < order.length; k++) expect(fq[order[k]]).toBeGreaterThanOrEqual(fq[order[k - 1]]);
      }),
      { numRuns: 300 },
    );
  });

  it('equals quantizeToInt then dequantize bit for bit, with codes inside [qmin, qmax]', () => {
    fc.assert(
      fc.property(
        values(),
        specArb,
        fc.float32Array({ noNaN: true, minLength: 1, maxLength: 16 }),
        (v, spec, probe) => {
          const qp = computeQParams(minMax(v), spec);
          // probe with values far outside the range too (saturation)
          const all = Float32Array.from([...v, ...probe]);
          const codes = quantizeToInt(all, [all.length], qp);
          for (const c of codes) {
            expect(c).toBeGreaterThanOrEqual(qp.qmin);
            expect(c).toBeLessThanOrEqual(qp.qmax);
          }
          const dq = dequantize(codes, [all.length], qp);
          const fq = fakeQuantize(all, [all.length], qp);
          // bit for bit but for the sign of zero (−0 fake-quantizes to −0, its code to +0)
          dq.forEach((y, i) => expect(y === fq[i], `${all[i]}: ${y} vs ${fq[i]}`).toBe(true));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('per-channel along any axis is per-tensor on each channel', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
        fc.nat(),
        specArb,
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (dims, axisSeed, base, seed) => {
          const axis = axisSeed % dims.length;
          const n = dims.reduce((a, b) => a * b, 1);
          const data = Float32Array.from({ length: n }, (_, i) =>
            Math.fround(Math.sin(seed + i * 1.7) * (1 + (i % 5))),
          );
          const spec: QuantSpec = { ...base, granularity: 'per-channel', axis };
          const C = dims[axis];
          const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
          const channelOf = (i: number) => Math.floor(i / inner) % C;
          const lo = new Float32Array(C).fill(Infinity);
          const hi = new Float32Array(C).fill(-Infinity);
          data.forEach((x, i) => {
            lo[channelOf(i)] = Math.min(lo[channelOf(i)], x);
            hi[channelOf(i)] = Math.max(hi[channelOf(i)], x);
          });
          const qp = computeQParams({ min: lo, max: hi }, spec);
          expect(qp.axis).toBe(axis);
          const fq = fakeQuantize(data, dims, qp);
          data.forEach((x, i) => {
            const c = channelOf(i);
            const one = computeQParams({ min: lo.subarray(c, c + 1), max: hi.subarray(c, c + 1) }, base);
            expect(one.scale[0]).toBe(qp.scale[c]);
            expect(one.zeroPoint[0]).toBe(qp.zeroPoint[c]);
            expect(fq[i]).toBe(fakeQuantizeValue(x, qp, c));
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});

const WEIGHT_OBSERVERS = [
  'minmax',
  'ema-minmax',
  'mse',
  'ema-mse',
  'percentile',
  'ema-quantile',
  'clipstd',
  'kl',
] as const;
const weightSpec = specArb.map((s) => ({ ...s, bits: Math.min(s.bits, 8) }));

function mean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return s / v.length;
}

describe('weight observers (property)', () => {
  it('min/max holds every value; mse, percentile and ema-quantile stay inside it; KL inside ±max|x|', () => {
    fc.assert(
      fc.property(values(48), weightSpec, fc.constantFrom(...WEIGHT_OBSERVERS), (v, spec, name) => {
        const r = observeWeight(name, v, [v.length], spec);
        const [lo, hi] = [r.min[0], r.max[0]];
        const m = minMax(v);
        const [vmin, vmax] = [m.min[0], m.max[0]];
        const absMax = Math.max(-vmin, vmax);
        expect(lo).toBeLessThanOrEqual(hi);
        if (name === 'minmax' || name === 'ema-minmax') expect([lo, hi]).toEqual([vmin, vmax]);
        else if (name === 'clipstd') {
          expect(lo).toBeLessThanOrEqual(vmin);
          expect(hi).toBeGreaterThanOrEqual(vmax);
        } else if (name === 'kl') {
          expect(hi).toBeLessThanOrEqual(Math.fround(absMax) * (1 + 1e-6));
          expect(lo).toBe(vmin >= 0 ? 0 : -hi);
        } else if (name === 'mse' || name === 'ema-mse') {
          // candidates shrink [min, max] towards 0: inside the range widened to contain 0
          expect(lo).toBeGreaterThanOrEqual(Math.min(vmin, 0));
          expect(hi).toBeLessThanOrEqual(Math.max(vmax, 0));
        } else {
          expect(lo).toBeGreaterThanOrEqual(vmin);
          expect(hi).toBeLessThanOrEqual(vmax);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('ClipStd is [min(mean − 2.6·std, min), max(mean + 2.6·std, max)] with the unbiased std', () => {
    fc.assert(
      fc.property(values(48), (v) => {
        const r = observeWeight('clipstd', v, [v.length], {
          bits: 8,
          signed: true,
          symmetric: true,
          narrowRange: false,
          granularity: 'per-tensor',
          axis: -1,
          powerOfTwo: false,
        });
        const mu = mean(v);
        const sd =
          v.length > 1 ? Math.sqrt(Array.from(v, (x) => (x - mu) ** 2).reduce((a, b) => a + b, 0) / (v.length - 1)) : 0;
        const m = minMax(v);
        expect(r.min[0]).toBe(Math.fround(Math.min(mu - 2.6 * sd, m.min[0])));
        expect(r.max[0]).toBe(Math.fround(Math.max(mu + 2.6 * sd, m.max[0])));
      }),
      { numRuns: 200 },
    );
  });
});

/** Calibration statistics of `batches` as the calibration pass gathers them (histogram over the global range). */
function statsOf(batches: Float32Array[], bins = 256): ActivationStats {
  let lo = Infinity;
  let hi = -Infinity;
  for (const b of batches)
    for (const x of b) {
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
  return {
    histLo: lo,
    histHi: hi,
    batches: batches.map((b) => {
      let sum = 0;
      let sumSq = 0;
      let bmin = Infinity;
      let bmax = -Infinity;
      for (const x of b) {
        sum += x;
        sumSq += x * x;
        bmin = Math.min(bmin, x);
        bmax = Math.max(bmax, x);
      }
      return { min: bmin, max: bmax, sum, sumSq, count: b.length, hist: histogramOf(b, lo, hi, bins) };
    }),
  };
}

describe('activation observers (property)', () => {
  const batchesArb = fc.array(values(32), { minLength: 1, maxLength: 4 });
  const actSpec = weightSpec;

  it('min/max holds every value; every other observer but ClipStd stays inside it (mse: widened to 0; KL: ±max|x|)', () => {
    fc.assert(
      fc.property(batchesArb, actSpec, fc.constantFrom(...WEIGHT_OBSERVERS), (batches, spec, name) => {
        const stats = statsOf(batches);
        const gmin = Math.min(...stats.batches.map((b) => b.min));
        const gmax = Math.max(...stats.batches.map((b) => b.max));
        // 256 KL bins (TensorRT uses 2048) keep the search fast; the invariant does not depend on it
        const r = observeActivation(name, stats, spec, { klBins: 256 });
        const [lo, hi] = [r.min[0], r.max[0]];
        const f = Math.fround;
        if (name === 'minmax') expect([lo, hi]).toEqual([f(gmin), f(gmax)]);
        else if (name === 'clipstd') {
          expect(lo).toBeLessThanOrEqual(f(gmin));
          expect(hi).toBeGreaterThanOrEqual(f(gmax));
        } else if (name === 'kl') {
          const absMax = Math.max(-gmin, gmax, 0);
          expect(hi).toBeLessThanOrEqual(f(absMax) * (1 + 1e-6));
          expect(lo).toBe(gmin >= 0 ? 0 : -hi);
        } else if (name === 'mse' || name === 'ema-mse') {
          expect(lo).toBeGreaterThanOrEqual(f(Math.min(gmin, 0)) - 1e-6 * Math.abs(gmin));
          expect(hi).toBeLessThanOrEqual(f(Math.max(gmax, 0)) + 1e-6 * Math.abs(gmax));
        } else {
          // ema-minmax, percentile, ema-quantile: convex combinations or quantiles of the data
          expect(lo).toBeGreaterThanOrEqual(f(gmin) - 1e-6 * Math.abs(gmin));
          expect(hi).toBeLessThanOrEqual(f(gmax) + 1e-6 * Math.abs(gmax));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('ClipStd never clips: the pooled mean ± 2.6·std (unbiased), united with the global min/max', () => {
    fc.assert(
      fc.property(batchesArb, (batches) => {
        const r = observeActivation('clipstd', statsOf(batches), {
          bits: 8,
          signed: true,
          symmetric: true,
          narrowRange: false,
          granularity: 'per-tensor',
          axis: -1,
          powerOfTwo: false,
        });
        const all = batches.flatMap((b) => Array.from(b));
        const mu = mean(all);
        const sd = all.length > 1 ? Math.sqrt(all.reduce((a, x) => a + (x - mu) ** 2, 0) / (all.length - 1)) : 0;
        const [gmin, gmax] = [Math.min(...all), Math.max(...all)];
        const tol = 1e-9 * Math.max(1, Math.abs(mu) + sd) * all.length;
        expect(r.min[0]).toBeLessThanOrEqual(Math.fround(gmin));
        expect(r.max[0]).toBeGreaterThanOrEqual(Math.fround(gmax));
        expect(Math.abs(r.min[0] - Math.min(mu - 2.6 * sd, gmin))).toBeLessThanOrEqual(
          tol + 2 ** -23 * Math.abs(r.min[0]),
        );
        expect(Math.abs(r.max[0] - Math.max(mu + 2.6 * sd, gmax))).toBeLessThanOrEqual(
          tol + 2 ** -23 * Math.abs(r.max[0]),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('EMA min/max is the first batch, then r·old + (1 − r)·batch', () => {
    fc.assert(
      fc.property(batchesArb, (batches) => {
        const stats = statsOf(batches);
        let [lo, hi] = [stats.batches[0].min, stats.batches[0].max];
        // MQBench's form, old·r + batch·(1 − r) with r = 0.9 (0.1·x is not always x·(1 − 0.9) in floats)
        for (const b of stats.batches.slice(1)) {
          lo = lo * 0.9 + b.min * (1 - 0.9);
          hi = hi * 0.9 + b.max * (1 - 0.9);
        }
        const r = observeActivation('ema-minmax', stats, {
          bits: 8,
          signed: true,
          symmetric: true,
          narrowRange: false,
          granularity: 'per-tensor',
          axis: -1,
          powerOfTwo: false,
        });
        expect([r.min[0], r.max[0]]).toEqual([Math.fround(lo), Math.fround(hi)]);
      }),
      { numRuns: 100 },
    );
  });
});
