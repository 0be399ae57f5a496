// Histogram calibration: the single-pass, sampled form against the exact two-pass form,
// and the re-binning / strided-binning kernels it is made of.
import { describe, expect, it } from 'vitest';
import type { PreprocessSpec } from '../../src/lib/data/types.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import { collectActivationStats } from '../../src/lib/experiment/calibrate.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { findQuantPoints, ALL_PLACEMENT } from '../../src/lib/onnx/placement.ts';
import { histogramTotal, histogramQuantile } from '../../src/lib/quant/histogram.ts';
import { observeActivation } from '../../src/lib/quant/observers.ts';
import { mulberry32, smallCnn } from '../support/onnx-helpers.ts';
import { spec } from '../support/quant-helpers.ts';

const SPEC: PreprocessSpec = {
  resizeShorter: 8,
  crop: 8,
  interpolation: 'bilinear',
  mean: [0.5, 0.5, 0.5],
  std: [0.25, 0.25, 0.25],
  layout: 'NCHW',
};

describe('single-pass histogram calibration vs the exact two-pass form', () => {
  it('same min/max per batch, close histograms and MSE/percentile ranges', async () => {
    const engine = await createNodeWasmEngine(2);
    const g = foldBatchNorm(smallCnn({ seed: 3 })).graph;
    const rng = mulberry32(9);
    const images = Array.from({ length: 24 }, () =>
      Uint8Array.from({ length: 8 * 8 * 3 }, () => Math.floor(rng() * 256)),
    );
    const tensors = findQuantPoints(g, ALL_PLACEMENT).activations.map((p) => p.tensor);
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
