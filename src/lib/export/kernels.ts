/**
 * The arithmetic of onnxruntime's 8-bit integer kernels on the CPU (MLAS), written out so
 * the deploy-exact simulation, the divergence finder and the integer-arithmetic lesson
 * compute with the very numbers the kernels use:
 * - QLinearConv / QLinearMatMul (qlinearconv.cc ComputeOutputScale, MLAS
 *   MlasRequantizeOutput): the int32 accumulator Σ (x − z_x)(w − z_w) plus the int32 bias is
 *   converted to float32, multiplied by the float32 output scale M = (s_x·s_w) / s_y (two
 *   float32 roundings, in that order), clamped to the output type and rounded half to even
 *   (cvtps2dq / nearbyintf), then z_y is added;
 * - the int32 bias as onnxruntime's quantizer and its WeightBiasQuantization transform
 *   write it: round_half_even(float32(b / float32(s_x·s_w)));
 * - QLinearAdd (MLAS qladd.cpp, the portable path):
 *   c = round_half_even(clamp((s_a·(a − z_a) + s_b·(b − z_b)) / s_c, lo − z_c, hi − z_c) + z_c)
 *   (the x86 SIMD path computes r_a·a + r_b·b + z_c − (r_a·z_a + r_b·z_b) with r = s / s_c,
 *   which rounds differently at ties; the deployed MobileNet-V2 matched the portable formula
 *   on every code, see docs/deployment.md);
 * - QLinearGlobalAveragePool (MLAS qlgavgpool.cpp): the int32 sum of (x − z_x) over the
 *   image times the float32 scale s_x / (s_y·N), requantized like a convolution;
 * - MatMulIntegerToFloat: float32(acc)·float32(s_a·s_b) + bias.
 * And the fixed-point form of a requantization multiplier that gemmlowp and TFLite use
 * (M = M0·2^−n, M0 an int32 in [2^30, 2^31)), for teaching and comparison.
 *
 * Pure numbers in and out (JS doubles carrying float32 values); no graphs, no engine.
 */
import type { FixedPointMultiplier } from '../protocol/deploy.ts';
import { roundHalfToEven } from '../quant/round.ts';

const f = Math.fround;

/** Saturation range of an 8-bit storage type. */
export function typeRange(signed: boolean): { lo: number; hi: number } {
  return signed ? { lo: -128, hi: 127 } : { lo: 0, hi: 255 };
}

/** float32(s_x·s_w): the bias scale of onnxruntime's quantizer. */
export function biasScale(sx: number, sw: number): number {
  return f(f(sx) * f(sw));
}

/** The int32 bias onnxruntime stores for a float bias `b` (may exceed int32: check with fitsInt32). */
export function quantizeBias(b: number, sx: number, sw: number): number {
  return roundHalfToEven(f(f(b) / biasScale(sx, sw)));
}

export const INT32_MAX = 2 ** 31 - 1;

export function fitsInt32(v: number): boolean {
  return v >= -INT32_MAX - 1 && v <= INT32_MAX;
}

/** QLinearConv's float32 output scale M = float32(float32(s_x·s_w) / s_y). */
export function outputMultiplier(sx: number, sw: number, sy: number): number {
  return f(biasScale(sx, sw) / f(sy));
}

/**
 * MlasRequantizeOutput for one value: the output code (zero point included) of an int32
 * accumulator `acc` (bias already added) under multiplier M.
 */
export function requantize(acc: number, m: number, zy: number, signed: boolean): number {
  const { lo, hi } = typeRange(signed);
  let v = f(f(acc) * m);
  v = Math.min(Math.max(v, lo - zy), hi - zy);
  return roundHalfToEven(v) + zy;
}

/** QLinearAdd constants of one (a, b) → c addition. */
export interface AddParams {
  sa: number;
  za: number;
  sb: number;
  zb: number;
  sc: number;
  zc: number;
  signed: boolean;
}

/** QLinearAdd, portable MLAS path (wasm): codes in, code out. */
export function qlinearAdd(a: number, b: number, p: AddParams): number {
  const { lo, hi } = typeRange(p.signed);
  const va = f(f(p.sa) * (a - p.za));
  const vb = f(f(p.sb) * (b - p.zb));
  let vc = f(f(va + vb) / f(p.sc));
  vc = Math.min(Math.max(vc, lo - p.zc), hi - p.zc);
  return roundHalfToEven(f(vc + p.zc));
}

/** QLinearGlobalAveragePool's float32 scale s_x / (s_y·N). */
export function averagePoolScale(sx: number, sy: number, n: number): number {
  return f(f(sx) / f(f(sy) * n));
}

export type { FixedPointMultiplier } from '../protocol/deploy.ts';

/**
 * gemmlowp / TFLite QuantizeMultiplier for 0 < M < 1: M = q·2^e with q in [0.5, 1),
 * M0 = round(q·2^31), shift = −e. Throws RangeError outside (0, 1).
 */
export function fixedPointMultiplier(m: number): FixedPointMultiplier {
  if (!(m > 0 && m < 1)) throw new RangeError(`A requantization multiplier must lie in (0, 1), got ${m}.`);
  let e = Math.floor(Math.log2(m)) + 1;
  let q = m / 2 ** e;
  // log2 may land one off next to a power of two (Math.log2(0.25·(1 − 2^−53)) is −2). It is one
  // ulp off at most, which round(q·2^31) below cannot tell, so Stryker's mutants of these two
  // lines change no result (the m0 = 2^31 step below catches the rounding up).
  // Stryker disable next-line all: see above
  if (q >= 1) [q, e] = [q / 2, e + 1];
  // Stryker disable next-line all: see above
  if (q < 0.5) [q, e] = [q * 2, e - 1];
  let m0 = Math.round(q * 2 ** 31);
  if (m0 === 2 ** 31) [m0, e] = [m0 / 2, e + 1];
  return { m0, shift: -e, value: (m0 / 2 ** 31) * 2 ** e };
}

/** gemmlowp SaturatingRoundingDoublingHighMul(a, b) of two int32: round(a·b / 2^31), ties towards +∞ (its nudge). */
export function roundingDoublingHighMul(a: number, b: number): number {
  if (a === -(2 ** 31) && b === -(2 ** 31)) return INT32_MAX;
  const ab = BigInt(a) * BigInt(b);
  // Stryker disable next-line EqualityOperator: at ab = 0 either nudge truncates to 0
  const nudge = ab >= 0n ? 1n << 30n : 1n - (1n << 30n);
  // C++ integer division truncates toward zero, as BigInt division does
  return Number((ab + nudge) / (1n << 31n));
}

/** gemmlowp RoundingDivideByPOT(x, n): x / 2^n rounded to nearest, ties away from zero. */
export function roundingDivideByPot(x: number, n: number): number {
  const mask = (1 << n) - 1;
  const remainder = x & mask;
  // Stryker disable next-line EqualityOperator: at x = 0 the remainder is 0, above neither threshold
  const threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> n) + (remainder > threshold ? 1 : 0);
}

/** Integer-only requantization (TFLite style): code = clamp(RDivPOT(SRDHM(acc, M0), n) + z_y). */
export function requantizeFixedPoint(acc: number, fp: FixedPointMultiplier, zy: number, signed: boolean): number {
  const { lo, hi } = typeRange(signed);
  const v = roundingDivideByPot(roundingDoublingHighMul(acc, fp.m0), fp.shift) + zy;
  return Math.min(Math.max(v, lo), hi);
}
