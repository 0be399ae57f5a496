/**
 * Round half to even: the rounding of ONNX `Round` and `QuantizeLinear`.
 *
 * Exists because JavaScript's `Math.round` rounds halves towards +Infinity
 * (Math.round(-0.5) = -0, Math.round(2.5) = 3), which would make the JS reference
 * quantizer disagree with the fake-quant graph on every tie. Pure, no imports.
 */

/**
 * Round `x` to the nearest integer, ties to the even neighbour (IEEE 754
 * roundTiesToEven, as C `nearbyint` and ONNX `Round`).
 * 0.5 → 0, 1.5 → 2, 2.5 → 2, -0.5 → -0, -1.5 → -2. The sign of zero is kept
 * (-0.3 → -0), NaN and ±Infinity pass through. Never throws.
 */
export function roundHalfToEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f; // exact for |x| < 2^52; above that x is already an integer (d = 0)
  let r: number;
  if (d < 0.5) r = f;
  else if (d > 0.5) r = f + 1;
  else r = f % 2 === 0 ? f : f + 1; // tie (also NaN/±Inf fall here and stay NaN/±Inf)
  // keep the sign of zero like nearbyint: x * 0 is -0 for negative x, +0 otherwise
  return r === 0 ? x * 0 : r;
}
