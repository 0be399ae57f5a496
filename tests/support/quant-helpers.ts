/**
 * Test helpers for the quant unit tests: a seeded PRNG written here (so expected
 * distributions do not depend on a library's algorithm) and an exact array compare
 * that reports the first differing index.
 */

import type { QuantSpec } from '../../src/lib/quant/types.ts';
import { mulberry32 as rng } from '../../src/lib/util/random.ts';

export { rng };

/** A QuantSpec for tests: signed symmetric 8-bit per-tensor, with overrides. */
export const spec = (over: Partial<QuantSpec> = {}): QuantSpec => ({
  bits: 8,
  signed: true,
  symmetric: true,
  narrowRange: false,
  granularity: 'per-tensor',
  axis: -1,
  powerOfTwo: false,
  ...over,
});

/** Standard normal samples (Box-Muller). */
export function gaussian(n: number, seed: number, sigma = 1): Float32Array {
  const u = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    const th = 2 * Math.PI * u();
    out[i] = sigma * r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = sigma * r * Math.sin(th);
  }
  return out;
}

/** Laplace(0, b) samples by inverse CDF. */
export function laplace(n: number, seed: number, b = 1): Float32Array {
  const u = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = u() - 0.5;
    out[i] = -b * Math.sign(v) * Math.log(1 - 2 * Math.abs(v));
  }
  return out;
}

/** Uniform samples in [lo, hi). */
export function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const u = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * u();
  return out;
}

/** Index of the first position where a and b differ (=== semantics), -1 when equal. */
export function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Throws with the first differing index and both values when arrays differ. */
export function expectExact(actual: ArrayLike<number>, expected: ArrayLike<number>, what = 'values'): void {
  const i = firstDiff(actual, expected);
  if (i >= 0) {
    throw new Error(
      `${what} differ at index ${i}: got ${actual[i]}, expected ${expected[i]} (lengths ${actual.length}/${expected.length})`,
    );
  }
}
