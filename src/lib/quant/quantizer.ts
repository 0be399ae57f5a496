/**
 * The uniform affine quantizer: integer ranges, quantization parameters from a
 * clipping range, and the JS reference fake-quantization.
 *
 * Why it exists: it is the single definition of "what quantizing a tensor means" in
 * this project. The fake-quant ONNX graph inserted by src/lib/onnx must compute the
 * same numbers bit for bit, so the float formula is fixed here and mirrored there:
 *
 *     q = Clip(Round(x / s), qmin - zp, qmax - zp)      (Div, Round, Clip: float32)
 *     y = q * s                                         (Mul: float32)
 *
 * with Round half-to-even, x and s float32, every op rounded to float32. In JS that
 * is `q = clip(roundHalfToEven(fround(x / s)), ...)`, `y = fround(q * s)`: a float64
 * quotient/product of two float32 values rounded once to float32 equals the IEEE
 * float32 op exactly (53 >= 2*24 + 2, no double-rounding error). `y` equals
 * `(clip(round(x/s) + zp, qmin, qmax) - zp) * s`, the QuantizeLinear/
 * DequantizeLinear pair, because zp is an integer and the round is taken first.
 *
 * Must not: import ORT, DOM, Svelte, idb or node: modules; allocate per element.
 */
import { QpError } from '../util/errors.ts';
import { BIT_RANGE } from '../config/names.ts';
import { roundHalfToEven } from './round.ts';
import type { QParams, QuantSpec, Range } from './types.ts';

/** torch.finfo(torch.float32).eps: PyTorch/MQBench floor for a scale (all-zero channels). */
export const SCALE_EPS = 1.1920928955078125e-7;

/**
 * Integer range of a spec (unitless integer codes, inclusive).
 * signed [-2^(b-1), 2^(b-1)-1]; signed narrowRange [-(2^(b-1)-1), 2^(b-1)-1];
 * unsigned [0, 2^b-1] (narrowRange is ignored for unsigned).
 * Throws QpError CONFIG_INVALID when bits is not an integer in 2..16.
 */
export function qRange(spec: QuantSpec): { qmin: number; qmax: number } {
  const b = spec.bits;
  if (!Number.isInteger(b) || b < BIT_RANGE.min || b > BIT_RANGE.max) {
    throw new QpError(
      'CONFIG_INVALID',
      `The bit width ${String(b)} is not supported. Use a whole number of bits from ${BIT_RANGE.min} to ${BIT_RANGE.max}.`,
    );
  }
  if (!spec.signed) return { qmin: 0, qmax: 2 ** b - 1 };
  const half = 2 ** (b - 1);
  return { qmin: spec.narrowRange ? -(half - 1) : -half, qmax: half - 1 };
}

/**
 * Number of channels along `axis` of a tensor of shape `dims` (dims[axis]).
 * Throws QpError INTERNAL when axis is outside the shape.
 */
export function channelCount(dims: readonly number[], axis: number): number {
  if (!Number.isInteger(axis) || axis < 0 || axis >= dims.length) {
    throw new QpError('INTERNAL', `Channel axis ${axis} is outside a tensor of shape [${dims.join(', ')}].`);
  }
  return dims[axis];
}

/** Element count of a shape. */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/**
 * Memory layout of a per-channel view: element (o, c, i) lives at
 * `(o * channels + c) * inner + i`. Per-tensor (axis -1) is one channel.
 */
export interface ChannelLayout {
  outer: number;
  channels: number;
  inner: number;
}

/**
 * Layout for iterating a tensor of shape `dims` channel by channel along `axis`
 * (-1: per-tensor, a single channel). Throws QpError INTERNAL when `length` does
 * not match the shape or axis is out of range.
 */
export function channelLayout(dims: readonly number[], axis: number, length: number): ChannelLayout {
  const n = elementCount(dims);
  if (n !== length) {
    throw new QpError('INTERNAL', `A tensor of shape [${dims.join(', ')}] needs ${n} values, got ${length}.`);
  }
  if (axis === -1) return { outer: 1, channels: 1, inner: n };
  const channels = channelCount(dims, axis);
  let outer = 1;
  for (let k = 0; k < axis; k++) outer *= dims[k];
  let inner = 1;
  for (let k = axis + 1; k < dims.length; k++) inner *= dims[k];
  return { outer, channels, inner };
}

/**
 * Call `fn(c, start, end)` for every contiguous run of elements of channel c.
 * The runs of one channel are visited in memory order; no per-element division.
 */
export function forEachChannelRun(
  layout: ChannelLayout,
  fn: (channel: number, start: number, end: number) => void,
): void {
  const { outer, channels, inner } = layout;
  let base = 0;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      fn(c, base, base + inner);
      base += inner;
    }
  }
}

/**
 * Scale (float32, real units per integer step) and zero point (integer code) for a
 * clipping range, following PyTorch `_ObserverBase._calculate_qparams`, which
 * MQBench's observers inherit:
 * - the range is widened to contain 0: min = min(min, 0), max = max(max, 0);
 * - symmetric signed: s = max(|min|, |max|) / ((qmax - qmin) / 2), zp = 0
 *   (8-bit: amax/127.5; narrow range: amax/127, TensorRT);
 * - symmetric unsigned (OpenVINO unsigned activations after ReLU): s = max / qmax, zp = 0;
 * - asymmetric: s = (max - min) / (qmax - qmin), zp = qmin - round(min / s) clamped to
 *   [qmin, qmax] (round half to even, like torch.round);
 * - s is floored at SCALE_EPS so an all-zero channel gives a finite scale;
 * - power of two: s = 2^round(log2 s), MQBench `pot_quantization` (round, not ceil,
 *   half to even like torch.round). Deviation: MQBench keeps the zero point of the
 *   non-PoT scale; we recompute it from the PoT scale so `min` stays representable
 *   (only asymmetric+PoT differs, which no preset uses).
 * Scales are computed in float64 and stored as float32 (Math.fround), the value the
 * graph divides by; the zero point uses the float32 quotient min / s.
 * Per-tensor when range arrays have length 1 (axis -1), else per-channel with
 * `spec.axis`. Throws QpError CONFIG_INVALID for bad bits, INTERNAL when min/max
 * lengths differ or a bound is NaN.
 */
export function computeQParams(range: Range, spec: QuantSpec): QParams {
  const { qmin, qmax } = qRange(spec);
  const n = range.min.length;
  if (range.max.length !== n || n === 0) {
    throw new QpError(
      'INTERNAL',
      `A clipping range needs equal, non-empty min and max arrays (got ${n} and ${range.max.length}).`,
    );
  }
  const perChannel = spec.granularity === 'per-channel';
  if (!perChannel && n !== 1) {
    throw new QpError('INTERNAL', `A per-tensor spec needs a range of length 1, got ${n}.`);
  }
  const scale = new Float32Array(n);
  const zeroPoint = new Int32Array(n);
  // Stryker disable next-line EqualityOperator: a pass at c = n writes past both typed arrays, which JS ignores
  for (let c = 0; c < n; c++) {
    const lo = range.min[c];
    const hi = range.max[c];
    if (Number.isNaN(lo) || Number.isNaN(hi)) {
      throw new QpError('INTERNAL', `The clipping range of channel ${c} is NaN; the observed tensor contains NaN.`);
    }
    const minNeg = Math.min(lo, 0);
    const maxPos = Math.max(hi, 0);
    let s: number;
    if (spec.symmetric) {
      s = spec.signed ? Math.max(-minNeg, maxPos) / ((qmax - qmin) / 2) : maxPos / qmax;
    } else {
      s = (maxPos - minNeg) / (qmax - qmin);
    }
    // Stryker disable next-line EqualityOperator: at s = SCALE_EPS both branches give SCALE_EPS
    if (!(s > SCALE_EPS)) s = SCALE_EPS;
    let sf = Math.fround(s);
    if (spec.powerOfTwo) sf = Math.fround(2 ** roundHalfToEven(Math.log2(sf)));
    scale[c] = sf;
    if (!spec.symmetric) {
      let zp = qmin - roundHalfToEven(Math.fround(minNeg / sf));
      // minNeg ≤ 0, so zp ≥ qmin: the first clamp only guards; a clamp at its bound changes nothing
      // Stryker disable next-line ConditionalExpression,EqualityOperator: see above
      if (zp < qmin) zp = qmin;
      // Stryker disable next-line EqualityOperator: zp = qmax is kept either way
      if (zp > qmax) zp = qmax;
      zeroPoint[c] = zp;
    }
  }
  return { scale, zeroPoint, qmin, qmax, axis: perChannel ? spec.axis : -1 };
}

function checkQParams(qp: QParams, layout: ChannelLayout): void {
  if (qp.scale.length !== layout.channels || qp.zeroPoint.length !== layout.channels) {
    throw new QpError(
      'INTERNAL',
      `Quantization parameters have ${qp.scale.length} scales for ${layout.channels} channel(s).`,
    );
  }
}

/**
 * Fake-quantize `src` into `dst` (may be the same array): quantize and dequantize
 * with the exact float32 graph formula of the header. Units: same as the input.
 * Per-channel along qp.axis using `dims`, per-tensor when qp.axis is -1. NaN stays NaN.
 * Throws QpError INTERNAL when the shape, length or parameter count disagree.
 */
function fakeQuantizeInto(src: Float32Array, dst: Float32Array, dims: readonly number[], qp: QParams): void {
  const layout = channelLayout(dims, qp.axis, src.length);
  checkQParams(qp, layout);
  const { outer, channels, inner } = layout;
  const fround = Math.fround;
  let base = 0;
  // Stryker disable next-line EqualityOperator: a pass at o = outer starts at the end of both arrays, where writes are ignored
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const s = qp.scale[c];
      const zp = qp.zeroPoint[c];
      const lo = qp.qmin - zp;
      const hi = qp.qmax - zp;
      const end = base + inner;
      for (let i = base; i < end; i++) {
        let q = roundHalfToEven(fround(src[i] / s));
        q = q < lo ? lo : q > hi ? hi : q;
        dst[i] = q * s; // Float32Array store rounds once to float32 (= fround)
      }
      base = end;
    }
  }
}

/**
 * Fake-quantized copy of `data` (float32 values in, same units out).
 * Throws QpError INTERNAL when `data.length` does not match `dims` or the number of
 * scales does not match the channel count along qp.axis.
 */
export function fakeQuantize(data: Float32Array, dims: readonly number[], qp: QParams): Float32Array {
  const out = new Float32Array(data.length);
  fakeQuantizeInto(data, out, dims, qp);
  return out;
}

/** In-place variant of fakeQuantize: overwrites and returns `data`. Same throws. */
export function fakeQuantizeInPlace(data: Float32Array, dims: readonly number[], qp: QParams): Float32Array {
  fakeQuantizeInto(data, data, dims, qp);
  return data;
}

/**
 * Integer codes like ONNX QuantizeLinear: clamp(round(fround(x / s)) + zp, qmin, qmax),
 * round half to even, zero point included. Saturates at the spec's qmin/qmax (narrow
 * range: -127, where QuantizeLinear itself would allow -128). NaN maps to the zero point.
 * Used by the deployable export (integer weight initializers). Throws QpError INTERNAL on a
 * shape/parameter mismatch.
 */
export function quantizeToInt(data: Float32Array, dims: readonly number[], qp: QParams): Int32Array {
  const layout = channelLayout(dims, qp.axis, data.length);
  checkQParams(qp, layout);
  const out = new Int32Array(data.length);
  forEachChannelRun(layout, (c, start, end) => {
    const s = qp.scale[c];
    const zp = qp.zeroPoint[c];
    // runs come in memory order: an element past `end` is the next run's first, which that run overwrites
    // Stryker disable next-line EqualityOperator: see above
    for (let i = start; i < end; i++) {
      const r = roundHalfToEven(Math.fround(data[i] / s));
      let q = (Number.isNaN(r) ? 0 : r) + zp;
      // Stryker disable next-line EqualityOperator: a code at its bound is kept either way
      q = q < qp.qmin ? qp.qmin : q > qp.qmax ? qp.qmax : q;
      out[i] = q;
    }
  });
  return out;
}

/**
 * Inverse of quantizeToInt, like DequantizeLinear: fround((q - zp) * s).
 * Throws QpError INTERNAL on a shape/parameter mismatch.
 */
export function dequantize(codes: Int32Array, dims: readonly number[], qp: QParams): Float32Array {
  const layout = channelLayout(dims, qp.axis, codes.length);
  checkQParams(qp, layout);
  const out = new Float32Array(codes.length);
  forEachChannelRun(layout, (c, start, end) => {
    const s = qp.scale[c];
    const zp = qp.zeroPoint[c];
    // Stryker disable next-line EqualityOperator: as in quantizeToInt, the next run overwrites an element past `end`
    for (let i = start; i < end; i++) out[i] = (codes[i] - zp) * s;
  });
  return out;
}

/**
 * Fake-quantize one float64 value with channel c's parameters (observer searches and
 * tests). Same formula as fakeQuantize; `x` is rounded to float32 first.
 */
export function fakeQuantizeValue(x: number, qp: QParams, c = 0): number {
  const s = qp.scale[c];
  const zp = qp.zeroPoint[c];
  let q = roundHalfToEven(Math.fround(Math.fround(x) / s));
  const lo = qp.qmin - zp;
  const hi = qp.qmax - zp;
  q = q < lo ? lo : q > hi ? hi : q;
  return Math.fround(q * s);
}
