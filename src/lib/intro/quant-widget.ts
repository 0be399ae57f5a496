/**
 * The math behind the introduction's quantization widget: one real tensor quantized on a
 * grid the student sets (bits, scale, zero point, or a clipping range), with its error
 * split into rounding error (values inside the range) and clipping error (values outside).
 *
 * It uses the project's quantizer (src/lib/quant/quantizer.ts) so the widget shows the
 * exact numbers the fake-quant graphs compute. Pure: no DOM, no Svelte.
 */
import { QpError } from '../util/errors.ts';
import { computeQParams, fakeQuantize, qRange } from '../quant/quantizer.ts';
import type { QParams, QuantSpec } from '../quant/types.ts';

/** The widget's grid: unsigned asymmetric (uint8-style), as SNPE or PyTorch quint8. */
export function gridSpec(bits: number): QuantSpec {
  return {
    bits,
    signed: false,
    symmetric: false,
    narrowRange: false,
    granularity: 'per-tensor',
    axis: -1,
    powerOfTwo: false,
  };
}

/** Scale and zero point that cover the clipping range [lo, hi] (the MinMax rule on that range). */
export function paramsFromRange(lo: number, hi: number, bits: number): QParams {
  if (!(hi > lo))
    throw new QpError(
      'CONFIG_INVALID',
      `The clipping range must have its upper end above its lower end, got [${lo}, ${hi}].`,
    );
  return computeQParams({ min: Float32Array.of(lo), max: Float32Array.of(hi) }, gridSpec(bits));
}

/**
 * Parameters from a scale and zero point typed in by the student. Throws a full-sentence
 * QpError when the scale is not positive or the zero point is outside the integer range.
 */
export function paramsFromScale(scale: number, zeroPoint: number, bits: number): QParams {
  const { qmin, qmax } = qRange(gridSpec(bits));
  if (!(scale > 0) || !Number.isFinite(scale))
    throw new QpError('CONFIG_INVALID', `The scale must be a positive number, got ${scale}.`);
  if (!Number.isInteger(zeroPoint) || zeroPoint < qmin || zeroPoint > qmax) {
    throw new QpError(
      'CONFIG_INVALID',
      `The zero point must be a whole number from ${qmin} to ${qmax} at ${bits} bits, got ${zeroPoint}.`,
    );
  }
  return { scale: Float32Array.of(scale), zeroPoint: Int32Array.of(zeroPoint), qmin, qmax, axis: -1 };
}

/** The real-valued clipping range a grid covers: [(qmin − zp)·s, (qmax − zp)·s]. */
export function gridRange(qp: QParams): [number, number] {
  const s = qp.scale[0];
  const zp = qp.zeroPoint[0];
  return [Math.fround((qp.qmin - zp) * s), Math.fround((qp.qmax - zp) * s)];
}

export interface WidgetError {
  /** mean squared error over all elements, split by where it comes from (sum = total) */
  roundingMse: number;
  clippingMse: number;
  totalMse: number;
  /** 10·log10(Σx² / Σ(q − x)²) in dB; +Infinity when exact */
  sqnrDb: number;
  /** elements outside the grid's range (clipped) */
  clipped: number;
  /** largest |q − x| among elements inside the range (≤ s/2) */
  maxRoundingError: number;
  /** distinct integer levels the tensor actually uses */
  levelsUsed: number;
  levels: number;
}

/** Quantizes `x` with `qp` through the project's quantizer and splits the error. */
export function quantizationError(x: Float32Array, qp: QParams): WidgetError {
  const q = fakeQuantize(x, [x.length], qp);
  const [lo, hi] = gridRange(qp);
  const s = qp.scale[0];
  let round = 0;
  let clip = 0;
  let signal = 0;
  let clipped = 0;
  let maxRound = 0;
  const used = new Set<number>();
  for (let i = 0; i < x.length; i++) {
    const e = q[i] - x[i];
    signal += x[i] * x[i];
    used.add(Math.round(q[i] / s));
    if (x[i] < lo || x[i] > hi) {
      clip += e * e;
      clipped++;
    } else {
      round += e * e;
      if (Math.abs(e) > maxRound) maxRound = Math.abs(e);
    }
  }
  const n = Math.max(1, x.length);
  const noise = round + clip;
  return {
    roundingMse: round / n,
    clippingMse: clip / n,
    totalMse: noise / n,
    sqnrDb: noise === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10(signal / noise),
    clipped,
    maxRoundingError: maxRound,
    levelsUsed: used.size,
    levels: qp.qmax - qp.qmin + 1,
  };
}

/** Histogram of `x` over [lo, hi] in `bins` equal bins; values outside are left out. */
export function histogram(x: Float32Array, lo: number, hi: number, bins: number): number[] {
  const counts = new Array<number>(bins).fill(0);
  const w = (hi - lo) / bins;
  if (!(w > 0)) return counts;
  for (const v of x) {
    if (v < lo || v > hi) continue;
    counts[Math.min(bins - 1, Math.floor((v - lo) / w))]++;
  }
  return counts;
}

/**
 * Real values of the grid's integer levels inside [lo, hi], thinned to at most `max` lines
 * (every k-th level) so an 8-bit grid stays drawable; `step` says how many levels one line is.
 */
export function gridLines(qp: QParams, lo: number, hi: number, max = 64): { values: number[]; step: number } {
  const s = qp.scale[0];
  const zp = qp.zeroPoint[0];
  const first = Math.max(qp.qmin, Math.ceil(lo / s + zp));
  const last = Math.min(qp.qmax, Math.floor(hi / s + zp));
  const count = last - first + 1;
  if (count <= 0) return { values: [], step: 1 };
  const step = Math.max(1, Math.ceil(count / max));
  const values: number[] = [];
  for (let k = first; k <= last; k += step) values.push((k - zp) * s);
  return { values, step };
}
