// Histogram calibration: the single-pass, sampled form against the exact two-pass form,
// and the re-binning / strided-binning kernels it is made of.
import { describe, expect, it } from 'vitest';
import type { PreprocessSpec } from '../../src/lib/data/types.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import { collectActivationStats } from '../../src/lib/experiment/calibrate.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { findQuantPoints } from '../../src/lib/onnx/placement.ts';
import {
  accumulateCounts,
  accumulateCountsStrided,
  histogramTotal,
  histogramQuantile,
  rebinHistogram,
} from '../../src/lib/quant/histogram.ts';
import { observeActivation } from '../../src/lib/quant/observers.ts';
import { mulberry32, smallCnn } from './onnx-helpers.ts';
import { spec } from './quant-helpers.ts';

const SPEC: PreprocessSpec = {
  resizeShorter: 8,
  crop: 8,
  interpolation: 'bilinear',
  mean: [0.5, 0.5, 0.5],
  std: [0.25, 0.25, 0.25],
  layout: 'NCHW',
};

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

describe('single-pass histogram calibration vs the exact two-pass form', () => {
  it('same min/max per batch, close histograms and MSE/percentile ranges', async () => {
    const engine = await createNodeWasmEngine(2);
    const g = foldBatchNorm(smallCnn({ seed: 3 })).graph;
    const rng = mulberry32(9);
    const images = Array.from({ length: 24 }, () =>
      Uint8Array.from({ length: 8 * 8 * 3 }, () => Math.floor(rng() * 256)),
    );
    const tensors = findQuantPoints(g, {
      conv: true,
      gemm: true,
      add: true,
      pool: true,
      concat: true,
      modelInput: true,
    }).activations.map((p) => p.tensor);
    const base = { batchSize: 8, histBatchSize: 4, histogram: true, moments: true, bins: 256 };
    const exact = await collectActivationStats(engine, g, tensors, images, SPEC, { ...base, histogramMode: 'exact' });
    const fast = await collectActivationStats(engine, g, tensors, images, SPEC, base);
    const all = await collectActivationStats(engine, g, tensors, images, SPEC, { ...base, sampleStride: 1 });
    for (const t of tensors) {
      const e = exact.get(t)!;
      const f = fast.get(t)!;
      expect(f.histLo).toBe(e.histLo);
      expect(f.histHi).toBe(e.histHi);
      expect(f.batches).toHaveLength(3);
      f.batches.forEach((b, i) => {
        expect(b.min).toBe(e.batches[i].min);
        expect(b.max).toBe(e.batches[i].max);
        expect(b.count).toBe(e.batches[i].count);
        expect(b.sum).toBeCloseTo(e.batches[i].sum, 0);
        expect(histogramTotal(b.hist!) / histogramTotal(e.batches[i].hist!)).toBeCloseTo(1, 6);
        // every value binned (stride 1): only the fine→global re-binning separates it from exact
        const a = all.get(t)!.batches[i].hist!;
        for (const q of [0.5, 0.99, 0.9999]) {
          const w = (e.histHi! - e.histLo!) / 256;
          expect(
            Math.abs(
              histogramQuantile(a, e.histLo!, e.histHi!, q) -
                histogramQuantile(e.batches[i].hist!, e.histLo!, e.histHi!, q),
            ),
          ).toBeLessThanOrEqual(1.01 * w);
        }
      });
      for (const obs of ['mse', 'percentile'] as const) {
        const sp = spec({ bits: 8, signed: true, symmetric: true });
        const re = observeActivation(obs, e, sp);
        const width = Math.max(Math.abs(re.max[0]), Math.abs(re.min[0]), 1e-6);
        // every value binned: re-binning alone moves a range by under 1% of its width;
        // every 3rd value: these tensors hold only ~500 values per sub-batch (MobileNet's
        // hold millions), so the sample's noise allows 5% here
        for (const [st, tol] of [
          [all, 0.01],
          [f, 0.05],
        ] as const) {
          const r = observeActivation(obs, 'batches' in st ? st : st.get(t)!, sp);
          expect(Math.abs(r.max[0] - re.max[0]) / width).toBeLessThan(tol);
          expect(Math.abs(r.min[0] - re.min[0]) / width).toBeLessThan(tol);
        }
      }
    }
  });
});
