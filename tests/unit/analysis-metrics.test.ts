/**
 * Metric math of the per-layer analysis against hand-computed vectors: SQNR, cosine and
 * MSE from the reduction scalars equal the direct formulas; channel moments, drift
 * summaries, per-channel weight ranges and vanished channels.
 */
import { describe, expect, it } from 'vitest';
import {
  ChannelMoments,
  addErrorSums,
  bitsOf,
  channelRanges,
  driftSummary,
  emptyErrorSums,
  errorMetrics,
  errorSumsOf,
  vanishedChannels,
} from '../../src/lib/analysis/metrics.ts';
import { cosineSimilarity, meanSquaredError, sqnrDb } from '../../src/lib/quant/metrics.ts';
import { mulberry32, randn } from '../support/onnx-helpers.ts';

describe('error metrics from reduction sums', () => {
  it('match hand-computed values', () => {
    const ref = Float32Array.of(1, 2, 3, 4);
    const q = Float32Array.of(1.5, 2, 2.5, 4);
    // Σref² = 30, Σ(q−ref)² = 0.5, Σref·q = 1.5+4+7.5+16 = 29, Σq² = 2.25+4+6.25+16 = 28.5
    const s = errorSumsOf(ref, q);
    expect(s).toEqual({ refSq: 30, diffSq: 0.5, cross: 29, qSq: 28.5, count: 4 });
    const m = errorMetrics(s);
    expect(m.sqnrDb).toBeCloseTo(10 * Math.log10(60), 12);
    expect(m.cosine).toBeCloseTo(29 / Math.sqrt(30 * 28.5), 12);
    expect(m.mse).toBeCloseTo(0.125, 12);
  });

  it('summed over sub-batches equal the direct formulas on the whole vectors', () => {
    const rng = mulberry32(3);
    const ref = randn(rng, 1000, 2, 0.3);
    const noise = randn(rng, 1000, 0.1);
    const q = ref.map((r, i) => r + noise[i]);
    const total = emptyErrorSums();
    for (let s = 0; s < 1000; s += 128)
      addErrorSums(total, errorSumsOf(ref.subarray(s, s + 128), q.subarray(s, s + 128)));
    const m = errorMetrics(total);
    expect(m.sqnrDb).toBeCloseTo(sqnrDb(ref, q), 9);
    expect(m.cosine).toBeCloseTo(cosineSimilarity(ref, q), 9);
    expect(m.mse).toBeCloseTo(meanSquaredError(ref, q), 12);
  });

  it('edge cases follow src/lib/quant/metrics conventions', () => {
    expect(errorMetrics(errorSumsOf([1, 2], [1, 2])).sqnrDb).toBe(Infinity);
    expect(errorMetrics(errorSumsOf([0, 0], [0, 0])).cosine).toBe(1);
    expect(errorMetrics(errorSumsOf([0, 0], [1, 0])).cosine).toBe(0);
    expect(errorMetrics(emptyErrorSums()).mse).toBe(0);
  });
});

describe('channel moments and drift', () => {
  it('combine batch means weighted by image count', () => {
    const m = new ChannelMoments(2);
    // channel 0 values: batch A (1 image) mean 1, E[x²] 2; batch B (3 images) mean 3, E[x²] 10
    m.add([1, 0], [2, 1], 1);
    m.add([3, 0], [10, 1], 3);
    expect(m.images).toBe(4);
    expect(m.mean[0]).toBeCloseTo(2.5, 12);
    expect(m.meanSq[0]).toBeCloseTo(8, 12);
    expect(m.std()[0]).toBeCloseTo(Math.sqrt(8 - 6.25), 12);
    expect(m.std()[1]).toBeCloseTo(1, 12);
  });

  it('summarize |Δμ|/σ and σ ratio, leaving dead channels out', () => {
    const d = driftSummary([1, 0, 5], [2, 1, 9], [0, 0, 5], [2, 2, 0]);
    // channel 0: |1−0|/2 = 0.5, ratio 1; channel 1: 0, ratio 0.5; channel 2 dead (σ_ref 0)
    expect(d.channels).toBe(2);
    expect(d.meanAbsShift).toBeCloseTo(0.25, 12);
    expect(d.stdRatio).toBeCloseTo(0.75, 12);
    expect(driftSummary([1, 2], [3, 4], [1, 2], [3, 4])).toEqual({ meanAbsShift: 0, stdRatio: 1, channels: 2 });
  });
});

describe('weight statistics', () => {
  it('per-channel ranges on axis 0 (Conv) and axis 1 (MatMul)', () => {
    const w = Float32Array.of(1, -2, 3, 0.5, 0.25, -0.125); // [2,3]
    const r0 = channelRanges(w, [2, 3], 0);
    expect(Array.from(r0.min)).toEqual([-2, -0.125]);
    expect(Array.from(r0.max)).toEqual([3, 0.5]);
    const r1 = channelRanges(w, [2, 3], 1);
    expect(Array.from(r1.min)).toEqual([0.5, -2, -0.125]);
    expect(Array.from(r1.max)).toEqual([1, 0.25, 3]);
  });

  it('count channels rounded entirely to zero', () => {
    const fp = Float32Array.of(0.01, -0.02, 5, 4, 0, 0); // [3,2]: channel 2 is zero in FP32 too
    const q = Float32Array.of(0, 0, 5, 4, 0, 0);
    expect(vanishedChannels(fp, q, [3, 2], 0)).toBe(1);
  });

  it('bits from the integer range', () => {
    expect(bitsOf({ qmin: -127, qmax: 127 })).toBe(8);
    expect(bitsOf({ qmin: -8, qmax: 7 })).toBe(4);
    expect(bitsOf({ qmin: 0, qmax: 255 })).toBe(8);
  });
});
