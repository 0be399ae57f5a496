import { describe, expect, it } from 'vitest';
import {
  AccuracyCounter,
  agreement,
  cosineSimilarity,
  meanSquaredError,
  sqnrDb,
  topK,
  wilsonInterval,
} from '../../src/lib/quant/metrics.ts';
import { QpError } from '../../src/lib/util/errors.ts';

describe('topK', () => {
  it('orders by value, ties to the lower index', () => {
    const logits = Float32Array.of(1, 3, 3, 2, 0, /* row 1 */ 5, 5, 5, -1, 7);
    expect(Array.from(topK(logits, 5, 3, 0))).toEqual([1, 2, 3]);
    expect(Array.from(topK(logits, 5, 4, 1))).toEqual([4, 0, 1, 2]);
    expect(Array.from(topK(logits, 5, 1, 1))).toEqual([4]);
    expect(Array.from(topK(logits, 5, 9, 0))).toEqual([1, 2, 3, 0, 4]);
  });

  it('ranks NaN last and checks the row', () => {
    expect(Array.from(topK(Float32Array.of(NaN, -5, 1), 3, 3, 0))).toEqual([2, 1, 0]);
    expect(() => topK(new Float32Array(6), 3, 1, 2)).toThrow(QpError);
  });
});

describe('wilsonInterval', () => {
  it('matches the textbook value for 81 of 100', () => {
    const [lo, hi] = wilsonInterval(81, 100);
    // p = .81, z^2/n = .038415: center .798532, half-width .076321 by hand ->
    // [0.72221, 0.87485], quoted to 3-4 places as [0.7222, 0.875]
    expect(lo).toBeCloseTo(0.72221, 5);
    expect(hi).toBeCloseTo(0.87485, 5);
    expect(hi).toBeCloseTo(0.875, 3);
  });

  it('handles the edges', () => {
    expect(wilsonInterval(0, 0)).toEqual([0, 1]);
    const [lo0, hi0] = wilsonInterval(0, 10); // [0, z^2/(n+z^2)] = [0, 3.8415/13.8415]
    expect(lo0).toBe(0);
    expect(hi0).toBeCloseTo(3.841459 / 13.841459, 5);
    const [lo1, hi1] = wilsonInterval(10, 10);
    expect(hi1).toBe(1);
    expect(lo1).toBeCloseTo(10 / 13.841459, 5);
    expect(() => wilsonInterval(11, 10)).toThrow(QpError);
  });
});

describe('error metrics', () => {
  it('sqnrDb by hand', () => {
    // signal 1+4+9 = 14, noise 1 -> 10 log10 14 = 11.4613 dB
    expect(sqnrDb(Float32Array.of(1, 2, 3), Float32Array.of(1, 2, 2))).toBeCloseTo(11.4613, 4);
    expect(sqnrDb(Float32Array.of(1, 2), Float32Array.of(1, 2))).toBe(Infinity);
    expect(sqnrDb(Float32Array.of(0, 0), Float32Array.of(0, 1))).toBe(-Infinity);
    expect(() => sqnrDb(new Float32Array(2), new Float32Array(3))).toThrow(QpError);
  });

  it('cosineSimilarity by hand', () => {
    expect(cosineSimilarity(Float32Array.of(1, 0), Float32Array.of(1, 1))).toBeCloseTo(Math.SQRT1_2, 12);
    expect(cosineSimilarity(Float32Array.of(1, 2), Float32Array.of(-2, -4))).toBeCloseTo(-1, 12);
    expect(cosineSimilarity(Float32Array.of(0, 0), Float32Array.of(0, 0))).toBe(1);
    expect(cosineSimilarity(Float32Array.of(0, 0), Float32Array.of(0, 1))).toBe(0);
  });

  it('meanSquaredError and agreement by hand', () => {
    expect(meanSquaredError(Float32Array.of(1, 2, 3), Float32Array.of(1, 2, 5))).toBeCloseTo(4 / 3, 12);
    expect(agreement(Int32Array.of(1, 2, 3, 4), Int32Array.of(1, 0, 3, 0))).toBe(0.5);
    // the one agreement of the code base: empty runs agree vacuously, mismatched ones are a bug
    expect(agreement(new Int32Array(0), new Int32Array(0))).toBe(1);
    expect(() => agreement(Int32Array.of(1), Int32Array.of(1, 2))).toThrow(QpError);
  });
});

describe('AccuracyCounter', () => {
  it('counts top-1 / top-5 and keeps predictions across batches', () => {
    const classes = 6;
    const acc = new AccuracyCounter(classes, 1);
    // row 0: argmax 5, label 5 (top1) ; row 1: ranking 0>1>2>3>4>5, label 4 (top5 only)
    acc.add(Float32Array.of(0, 0, 0, 0, 0, 9, 6, 5, 4, 3, 2, 1), Int32Array.of(5, 4), 2);
    // row 2: ranking 0>1>2>3>4>5, label 5 (neither)
    acc.add(Float32Array.of(6, 5, 4, 3, 2, 1), [5], 1);
    expect([acc.n, acc.top1, acc.top5]).toEqual([3, 1, 2]);
    expect(acc.top1Accuracy).toBeCloseTo(1 / 3, 12);
    expect(acc.top5Accuracy).toBeCloseTo(2 / 3, 12);
    expect(Array.from(acc.predictions())).toEqual([5, 0, 0]);
    expect(() => acc.add(new Float32Array(5), [0], 1)).toThrow(QpError);
  });
});
