/**
 * Observers on a real activation: the histogram of the input of Conv_14 of the real
 * MobileNet-V2 (a ReLU6 output, 40% exact zeros), stored in
 * tests/fixtures/quant/relu6-Conv_14.json with its provenance (written by
 * scripts/capture-activation-histogram.ts). This is the kind of tensor on which
 * TensorRT W8A8 with the MXNet-style KL search collapsed to 0.2% top-1.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { foldAbsHistogram } from '../../src/lib/quant/histogram.ts';
import { klThreshold, observeActivation } from '../../src/lib/quant/observers.ts';
import { computeQParams, fakeQuantizeValue } from '../../src/lib/quant/quantizer.ts';
import type { ActivationStats, ObserverName } from '../../src/lib/quant/types.ts';
import { spec } from '../support/quant-helpers.ts';

const fx = JSON.parse(readFileSync(new URL('../fixtures/quant/relu6-Conv_14.json', import.meta.url), 'utf8')) as {
  min: number;
  max: number;
  histLo: number;
  histHi: number;
  bins: number;
  count: number;
  nonEmpty: [number, number][];
};
const hist = new Float64Array(fx.bins);
for (const [i, c] of fx.nonEmpty) hist[i] = c;
const stats: ActivationStats = {
  batches: [{ min: fx.min, max: fx.max, sum: 0, sumSq: 0, count: fx.count, hist }],
  histLo: fx.histLo,
  histHi: fx.histHi,
};
const w = (fx.histHi - fx.histLo) / fx.bins;
const centers = Float64Array.from({ length: fx.bins }, (_, k) => fx.histLo + (k + 0.5) * w);
const power = centers.reduce((s, v, k) => s + hist[k] * v * v, 0) / fx.count;

/** SQNR (dB) of 8-bit fake quantization of the histogram's sample with the range [lo, hi]. */
function sqnr(lo: number, hi: number, signed: boolean): number {
  const qp = computeQParams({ min: Float32Array.of(lo), max: Float32Array.of(hi) }, spec({ signed }));
  let err = 0;
  for (let k = 0; k < centers.length; k++) err += hist[k] * (fakeQuantizeValue(centers[k], qp) - centers[k]) ** 2;
  return 10 * Math.log10(power / (err / fx.count));
}

describe('observers on a real ReLU6 activation (MobileNet-V2, input of Conv_14)', () => {
  it('the fixture is what it says: non-negative, mostly exact zeros in bin 0', () => {
    expect(fx.min).toBe(0);
    expect(fx.max).toBeLessThanOrEqual(6);
    expect(hist[0] / fx.count).toBeGreaterThan(0.3);
  });

  for (const signed of [true, false]) {
    it(`KL keeps the signal (${signed ? 'signed, TensorRT' : 'unsigned'} 8-bit): ≥ 30 dB and within 10 dB of MSE`, () => {
      const db = (o: ObserverName) => {
        const r = observeActivation(o, stats, spec({ signed }));
        return sqnr(r.min[0], r.max[0], signed);
      };
      // measured: KL 35.7 / 31.4 dB, MSE 35.9 / 41.0 dB (signed / unsigned)
      expect(db('kl')).toBeGreaterThan(30);
      expect(db('kl')).toBeGreaterThan(db('mse') - 10);
      for (const o of ['mse', 'percentile', 'minmax'] as const) expect(db(o)).toBeGreaterThan(30);
    });
  }

  it('without the zero-bin handling the same search collapses (the failure the fix removes)', () => {
    const ah = foldAbsHistogram(hist, fx.histLo, fx.histHi, 2048, fx.max);
    const old = klThreshold(ah, fx.max, 128);
    const fixed = klThreshold(ah, fx.max, 128, 1, { zeroBin: 'neighbour', startBin: 128 });
    // measured: 0.76 (16 dB) versus 2.10 (35.7 dB)
    expect(old).toBeLessThan(0.3 * fx.max);
    expect(sqnr(0, old, true)).toBeLessThan(20);
    expect(fixed).toBeGreaterThan(2 * old);
    expect(sqnr(0, fixed, true)).toBeGreaterThan(sqnr(0, old, true) + 15);
  });
});
