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
    expect(() => topK(new Float32Array(6), 3, 1, -1)).toThrow(/Row -1 of 3 classes/);
    expect(() => topK(new Float32Array(6), 0, 1, 0)).toThrow(/Row 0 of 0 classes/);
  });

  it('keeps the earlier class when a later one only ties the last place kept', () => {
    // 1 ties class 1 for second place: class 1 keeps it, as with every other tie
    expect(Array.from(topK(Float32Array.of(3, 1, 1, 0), 4, 2, 0))).toEqual([0, 1]);
    expect(Array.from(topK(Float32Array.of(1, 1, 1), 3, 1, 0))).toEqual([0]);
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
    expect(() => wilsonInterval(-1, 10)).toThrow(/got -1 of 10/);
    expect(() => wilsonInterval(0, -1)).toThrow(/got 0 of -1/);
    expect(() => wilsonInterval(0, NaN)).toThrow(QpError);
  });

  it('gives exactly 0 as the lower end of 0 successes for every n (the algebra leaves 3e-18 at n = 69)', () => {
    for (let n = 1; n <= 200; n++) expect(wilsonInterval(0, n)[0]).toBe(0);
  });
});

describe('error metrics', () => {
  it('sqnrDb by hand', () => {
    // signal 1+4+9 = 14, noise 1 -> 10 log10 14 = 11.4613 dB
    expect(sqnrDb(Float32Array.of(1, 2, 3), Float32Array.of(1, 2, 2))).toBeCloseTo(11.4613, 4);
    expect(sqnrDb(Float32Array.of(1, 2), Float32Array.of(1, 2))).toBe(Infinity);
    // equal all-zero tensors: no noise, so +Infinity (not 0/0)
    expect(sqnrDb(Float32Array.of(0, 0), Float32Array.of(0, 0))).toBe(Infinity);
    expect(sqnrDb(Float32Array.of(0, 0), Float32Array.of(0, 1))).toBe(-Infinity);
    expect(() => sqnrDb(new Float32Array(2), new Float32Array(3))).toThrow(QpError);
  });

  it('cosineSimilarity by hand', () => {
    expect(cosineSimilarity(Float32Array.of(1, 0), Float32Array.of(1, 1))).toBeCloseTo(Math.SQRT1_2, 12);
    expect(cosineSimilarity(Float32Array.of(1, 2), Float32Array.of(-2, -4))).toBeCloseTo(-1, 12);
    expect(cosineSimilarity(Float32Array.of(0, 0), Float32Array.of(0, 0))).toBe(1);
    expect(cosineSimilarity(Float32Array.of(0, 0), Float32Array.of(0, 1))).toBe(0);
    expect(cosineSimilarity(Float32Array.of(0, 1), Float32Array.of(0, 0))).toBe(0);
  });

  it('meanSquaredError and agreement by hand', () => {
    expect(meanSquaredError(Float32Array.of(1, 2, 3), Float32Array.of(1, 2, 5))).toBeCloseTo(4 / 3, 12);
    expect(meanSquaredError(new Float32Array(0), new Float32Array(0))).toBe(0);
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
    expect(() => acc.add(new Float32Array(12), [0], 2)).toThrow(/needs 12 logits and 2 labels, got 12 and 1/);
    // a batch whose first row is whole but second is not: refused before any row is counted
    expect(() => acc.add(new Float32Array(7), [0, 0], 2)).toThrow(/needs 12 logits and 2 labels, got 7 and 2/);
    // a refused batch counts nothing
    expect([acc.n, acc.top1, acc.top5]).toEqual([3, 1, 2]);
  });

  it('refuses a class count that is not a positive whole number', () => {
    for (const bad of [0, -3, 1.5, NaN]) expect(() => new AccuracyCounter(bad)).toThrow(/positive class count/);
  });

  it('keeps every prediction when a batch is far larger than the buffer it started with', () => {
    const acc = new AccuracyCounter(2, 1);
    // 7 rows, argmax alternating 1, 0, 1, …: the buffer of 1 must grow to 7 at once
    const rows = 7;
    const logits = new Float32Array(rows * 2);
    for (let r = 0; r < rows; r++) logits[2 * r + (r % 2 === 0 ? 1 : 0)] = 1;
    acc.add(logits, new Int32Array(rows), rows);
    acc.add(Float32Array.of(0, 1), [1], 1);
    expect(Array.from(acc.predictions())).toEqual([1, 0, 1, 0, 1, 0, 1, 1]);
    expect([acc.n, acc.top1, acc.top5]).toEqual([8, 4, 8]);
  });
});
