// The introduction's tensor: the first convolution's (BN-folded) weights of a model.
import { describe, expect, it } from 'vitest';
import { firstConvWeights } from '../../src/lib/intro/first-conv.ts';
import { buildMobileNetV2 } from '../../src/lib/models/builders.ts';

describe('firstConvWeights', () => {
  it('returns the 32×3×3×3 stem convolution of a MobileNet-V2', () => {
    const t = firstConvWeights(buildMobileNetV2());
    expect(t.dims).toEqual([32, 3, 3, 3]);
    expect(t.values.length).toBe(32 * 27);
    expect(t.values.some((v) => v !== 0)).toBe(true);
  });

  it('rejects bytes that are not a model with a clear error', () => {
    expect(() => firstConvWeights(new Uint8Array([1, 2, 3]))).toThrow();
  });
});
