// The introduction widget's math: grid from a range or from scale/zero point, error split, histogram, grid lines.
import { describe, expect, it } from 'vitest';
import {
  gridLines,
  gridRange,
  histogram,
  paramsFromRange,
  paramsFromScale,
  quantizationError,
} from '../../src/lib/intro/quant-widget.ts';
import { fakeQuantizeValue } from '../../src/lib/quant/quantizer.ts';

describe('introduction quantization widget', () => {
  it('a range gives the MinMax scale and zero point, and the grid covers that range', () => {
    const qp = paramsFromRange(-1, 3, 8);
    expect(qp.scale[0]).toBeCloseTo(4 / 255, 7);
    expect(qp.zeroPoint[0]).toBe(64); // 0 − round(−1 / (4/255)) = round(63.75)
    const [lo, hi] = gridRange(qp);
    expect(lo).toBeCloseTo(-64 * (4 / 255), 6);
    expect(hi).toBeCloseTo(191 * (4 / 255), 6);
    expect(() => paramsFromRange(2, 2, 8)).toThrow(/upper end above/);
  });

  it('checks a typed-in scale and zero point with full-sentence errors', () => {
    expect(paramsFromScale(0.5, 3, 3).qmax).toBe(7);
    expect(() => paramsFromScale(0, 0, 8)).toThrow(/scale must be a positive number/);
    expect(() => paramsFromScale(0.1, 16, 4)).toThrow(/from 0 to 15 at 4 bits/);
  });

  it('splits the error into rounding (inside the range) and clipping (outside), matching the quantizer', () => {
    const qp = paramsFromScale(0.5, 2, 3); // levels −1.0 … 2.5
    const x = Float32Array.of(0.1, 0.74, -0.9, 3.5, -2);
    const e = quantizationError(x, qp);
    const sq = (v: number) => (fakeQuantizeValue(v, qp) - Math.fround(v)) ** 2; // x is float32
    expect(e.clipped).toBe(2);
    expect(e.roundingMse).toBeCloseTo((sq(0.1) + sq(0.74) + sq(-0.9)) / 5, 9);
    expect(e.clippingMse).toBeCloseTo((1 + 1) / 5, 6); // 3.5 → 2.5, −2 → −1
    expect(e.totalMse).toBeCloseTo(e.roundingMse + e.clippingMse, 12);
    expect(e.maxRoundingError).toBeLessThanOrEqual(0.25 + 1e-7);
    expect(e.levels).toBe(8);
  });

  it('more bits on the same range lower the rounding error about fourfold per bit', () => {
    const x = new Float32Array(4096).map((_, i) => Math.sin(i * 0.37) * 0.8);
    const e4 = quantizationError(x, paramsFromRange(-1, 1, 4));
    const e6 = quantizationError(x, paramsFromRange(-1, 1, 6));
    expect(e4.clipped).toBe(0);
    expect(e4.roundingMse / e6.roundingMse).toBeGreaterThan(10);
    expect(e4.roundingMse / e6.roundingMse).toBeLessThan(22);
    expect(e6.sqnrDb - e4.sqnrDb).toBeGreaterThan(10);
  });

  it('a narrow range trades rounding error for clipping error', () => {
    const x = new Float32Array(2001).map((_, i) => (i - 1000) / 1000);
    const wide = quantizationError(x, paramsFromRange(-1, 1, 3));
    const narrow = quantizationError(x, paramsFromRange(-0.25, 0.25, 3));
    expect(narrow.clipped).toBeGreaterThan(1000);
    expect(narrow.roundingMse).toBeLessThan(wide.roundingMse);
    expect(narrow.clippingMse).toBeGreaterThan(wide.clippingMse);
  });

  it('histogram counts values inside the range; grid lines are the levels, thinned', () => {
    expect(histogram(Float32Array.of(0, 0.1, 0.5, 0.99, 1, 2), 0, 1, 2)).toEqual([2, 3]);
    const qp = paramsFromScale(0.5, 2, 3);
    expect(gridLines(qp, -10, 10).values).toEqual([-1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5]);
    expect(gridLines(qp, 0, 1).values).toEqual([0, 0.5, 1]);
    const g8 = gridLines(paramsFromRange(-1, 1, 8), -1, 1, 64);
    expect(g8.step).toBe(4);
    expect(g8.values.length).toBeLessThanOrEqual(64);
  });
});
