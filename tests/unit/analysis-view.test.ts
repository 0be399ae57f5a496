/**
 * Pure helpers of the "Why accuracy drops" views (src/lib/state/analysis-view.ts):
 * worst-first ordering per metric direction, the Δμ/σ drift matrix, vanishing channels
 * under a scale, and axis helpers. Hand-computed expectations.
 */
import { describe, expect, it } from 'vitest';
import type { LayerAnalysis } from '../../src/lib/analysis/types.ts';
import { driftMatrix, niceLimit, orderLayers, roundsToZero, symlogTicks } from '../../src/lib/state/analysis-view.ts';

function layer(
  name: string,
  index: number,
  sqnr: number,
  mse: number,
  fpMean: number[],
  qMean: number[],
  fpStd: number[],
): LayerAnalysis {
  const m = { sqnrDb: sqnr, cosine: 0.9, mse };
  return {
    name,
    opType: 'Conv',
    depthwise: false,
    index,
    output: 'o',
    weight: 'w',
    weightBits: 8,
    weightSqnrDb: 30,
    standalone: m,
    accumulated: m,
    activationInput: null,
    channels: fpMean.length,
    vanishedChannels: 0,
    weightRanges: { min: fpMean.map(() => -1), max: fpMean.map(() => 1) },
    drift: { meanAbsShift: 0, stdRatio: 1, channels: fpMean.length },
    channelDrift: { fpMean, fpStd, qMean, qStd: fpStd },
  };
}

const A = layer('A', 0, 20, 0.1, [0, 1], [0.5, 1], [1, 2]);
const B = layer('B', 1, Infinity, 0.3, [0, 0, 0], [1, -2, 3], [2, 0, 1]);
const C = layer('C', 2, 10, 0.2, [5], [4], [0.5]);

describe('analysis view helpers', () => {
  it('orders layers in network order or worst first, per the metric’s direction', () => {
    expect(orderLayers([C, A, B], 'standaloneSqnr', 'network').map((l) => l.name)).toEqual(['A', 'B', 'C']);
    // low SQNR is worse; +∞ (exact) goes last
    expect(orderLayers([A, B, C], 'standaloneSqnr', 'worst').map((l) => l.name)).toEqual(['C', 'A', 'B']);
    // high MSE is worse
    expect(orderLayers([A, B, C], 'mse', 'worst').map((l) => l.name)).toEqual(['B', 'C', 'A']);
  });

  it('builds the layer × channel matrix of Δμ/σ, NaN-padded, optionally sorted per row', () => {
    const m = driftMatrix([A, B, C]);
    expect([m.rows, m.cols]).toEqual([3, 3]);
    const row = (r: number) => Array.from(m.values.slice(r * 3, r * 3 + 3));
    expect(row(0)).toEqual([0.5, 0, NaN]);
    expect(row(1)).toEqual([0.5, NaN, 3]); // σ = 0 → NaN
    expect(row(2)).toEqual([-2, NaN, NaN]);
    const s = driftMatrix([B], true);
    expect(Array.from(s.values)).toEqual([0.5, 3, NaN]);
    expect(Array.from(s.channelOf)).toEqual([0, 2, 1]);
    expect(m.p98).toBe(3);
  });

  it('knows when a channel rounds to zero (max |w| ≤ half a step; ties go to even, i.e. 0)', () => {
    expect(roundsToZero(-0.004, 0.005, 0.01)).toBe(true);
    expect(roundsToZero(-0.004, 0.0051, 0.01)).toBe(false);
    expect(roundsToZero(0, 0, 0.01)).toBe(false); // all zero in FP32 already
  });

  it('gives round colour limits and log-axis ticks', () => {
    expect([0.3, 0.5, 0.07, 3, 0].map(niceLimit)).toEqual([0.5, 0.5, 0.1, 5, 1]);
    expect(symlogTicks(1234)).toEqual([0, 0.1, 1, 10, 100, 1000]);
    expect(symlogTicks(15, -0.5, 3)).toEqual([-0.1, 0, 0.1, 1, 10]);
  });
});
