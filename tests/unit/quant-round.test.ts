import { describe, expect, it } from 'vitest';
import { roundHalfToEven } from '../../src/lib/quant/round.ts';

describe('roundHalfToEven', () => {
  it('rounds ties to the even neighbour (ONNX Round)', () => {
    const cases: [number, number][] = [
      [0.5, 0],
      [1.5, 2],
      [2.5, 2],
      [3.5, 4],
      [-1.5, -2],
      [-2.5, -2],
      [-3.5, -4],
      [127.5, 128],
      [-128.5, -128],
      [4503599627370495.5, 4503599627370496], // 2^52 - 0.5: last representable half
    ];
    for (const [x, want] of cases) expect(roundHalfToEven(x), `round(${x})`).toBe(want);
  });

  it('keeps the sign of zero like nearbyint', () => {
    expect(Object.is(roundHalfToEven(-0.5), -0)).toBe(true);
    expect(Object.is(roundHalfToEven(-0.3), -0)).toBe(true);
    expect(Object.is(roundHalfToEven(-0), -0)).toBe(true);
    expect(Object.is(roundHalfToEven(0.5), 0)).toBe(true);
    expect(Object.is(roundHalfToEven(0.3), 0)).toBe(true);
  });

  it('rounds non-ties to nearest', () => {
    expect(roundHalfToEven(0.49999999999999994)).toBe(0); // Math.round's historic bug case
    expect(roundHalfToEven(0.5000000000000001)).toBe(1);
    expect(roundHalfToEven(-0.5000000000000001)).toBe(-1);
    expect(roundHalfToEven(2.4)).toBe(2);
    expect(roundHalfToEven(-2.6)).toBe(-3);
    expect(roundHalfToEven(1e20)).toBe(1e20);
  });

  it('passes NaN and infinities through', () => {
    expect(roundHalfToEven(NaN)).toBeNaN();
    expect(roundHalfToEven(Infinity)).toBe(Infinity);
    expect(roundHalfToEven(-Infinity)).toBe(-Infinity);
  });
});
