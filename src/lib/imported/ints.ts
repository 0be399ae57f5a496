/**
 * The integer side of an imported quantized model: ONNX integer storage types (int4 …
 * int32), their value ranges, reading integer tensors of any of them into Int32Array, and
 * a quantizer's parameters as read from scale / zero-point tensors. Pure: no engine, no I/O.
 */
import { QpError } from '../util/errors.ts';
import type { TensorData } from '../onnx/ir.ts';
import type { QParams } from '../quant/types.ts';

import type { IntType } from '../protocol/imported.ts';

export type { IntType };

/** ONNX TensorProto data type → integer storage type. */
const BY_ONNX: Readonly<Record<number, IntType>> = {
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  21: 'uint4',
  22: 'int4',
};

export const INT_BITS: Readonly<Record<IntType, number>> = {
  int4: 4,
  uint4: 4,
  int8: 8,
  uint8: 8,
  int16: 16,
  uint16: 16,
  int32: 32,
};

export function isSigned(t: IntType): boolean {
  return t.startsWith('int');
}

/** The full value range of a storage type (what QuantizeLinear saturates to). */
export function storageRange(t: IntType): { qmin: number; qmax: number } {
  const b = INT_BITS[t];
  return isSigned(t) ? { qmin: -(2 ** (b - 1)), qmax: 2 ** (b - 1) - 1 } : { qmin: 0, qmax: 2 ** b - 1 };
}

/** The integer storage type of an ONNX type number, or undefined (float, bool, strings…). */
export function intTypeOfOnnx(onnxType: number): IntType | undefined {
  return BY_ONNX[onnxType];
}

const ONNX_OF_DTYPE: Readonly<Record<string, number>> = { uint8: 2, int8: 3, int32: 6 };

/** The integer storage type of a tensor, or undefined when it is not an integer tensor we read. */
export function intTypeOf(t: TensorData): IntType | undefined {
  if (t.dtype === 'other') return t.onnxType !== undefined ? BY_ONNX[t.onnxType] : undefined;
  const n = ONNX_OF_DTYPE[t.dtype];
  return n === undefined ? undefined : BY_ONNX[n];
}

/**
 * The values of an integer tensor (int4/uint4 unpacked, low nibble first, sign-extended).
 * Throws QpError MODEL_UNSUPPORTED for other types, MODEL_TRUNCATED when the data is short.
 */
export function intValues(t: TensorData): Int32Array {
  const type = intTypeOf(t);
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (!type)
    throw new QpError(
      'MODEL_UNSUPPORTED',
      `Tensor "${t.name}" was expected to hold integers (int4 to int32) but holds ${t.dtype === 'other' ? `ONNX type ${t.onnxType}` : t.dtype}.`,
    );
  const short = (have: number) =>
    new QpError(
      'MODEL_TRUNCATED',
      `Integer tensor "${t.name}" holds ${have} values but its shape [${t.dims}] needs ${n}. The file is damaged: export it again.`,
    );
  if (t.dtype === 'int8' || t.dtype === 'uint8' || t.dtype === 'int32') {
    if (t.data.length < n) throw short(t.data.length);
    return Int32Array.from(t.data as ArrayLike<number>);
  }
  const bytes = t.data as Uint8Array;
  const out = new Int32Array(n);
  if (type === 'int16' || type === 'uint16') {
    if (bytes.byteLength < 2 * n) throw short(bytes.byteLength >> 1);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) out[i] = type === 'int16' ? dv.getInt16(2 * i, true) : dv.getUint16(2 * i, true);
    return out;
  }
  if (bytes.byteLength < Math.ceil(n / 2)) throw short(bytes.byteLength * 2);
  for (let i = 0; i < n; i++) {
    const v = (bytes[i >> 1] >> ((i & 1) * 4)) & 0xf;
    out[i] = type === 'int4' && v > 7 ? v - 16 : v;
  }
  return out;
}

/** Float values of a float32 tensor, or undefined for another type. */
export function floatValues(t: TensorData): Float32Array | undefined {
  return t.dtype === 'float32' ? (t.data as Float32Array) : undefined;
}

/** A quantizer as read from a file: parameters plus the storage type they were written in. */
export interface ReadQuantizer {
  qparams: QParams;
  storage: IntType;
}

/**
 * QParams from a scale tensor, an optional zero-point tensor (absent: 0 of `defaultType`)
 * and the axis attribute (per-axis when the scale has more than one element; ONNX's
 * default axis is 1). `rank` is the rank of the quantized tensor when known, for negative
 * axes. Throws QpError MODEL_UNSUPPORTED for non-float32 scales, non-positive scales,
 * mismatched sizes or zero points outside their type.
 */
export function readQuantizer(
  where: string,
  scale: TensorData,
  zeroPoint: TensorData | undefined,
  axisAttr: number | undefined,
  rank: number | undefined,
  defaultType: IntType = 'uint8',
): ReadQuantizer {
  const s = floatValues(scale);
  if (!s)
    throw new QpError(
      'MODEL_UNSUPPORTED',
      `The scale of ${where} is ${scale.dtype === 'other' ? `ONNX type ${scale.onnxType}` : scale.dtype}; only float32 scales are read. Quantize the model with float32 scales.`,
    );
  const storage = zeroPoint ? intTypeOf(zeroPoint) : defaultType;
  if (!storage)
    throw new QpError(
      'MODEL_UNSUPPORTED',
      `The zero point of ${where} has a type that is not an integer storage type this reader knows (int4, uint4, int8, uint8, int16, uint16, int32).`,
    );
  const zp = zeroPoint ? intValues(zeroPoint) : new Int32Array(s.length);
  if (zp.length !== s.length && !(zp.length === 1 && s.length === 1))
    throw new QpError(
      'MODEL_UNSUPPORTED',
      `${where} has ${s.length} scales but ${zp.length} zero points; they must have the same size.`,
    );
  for (let i = 0; i < s.length; i++)
    if (!(s[i] > 0) || !Number.isFinite(s[i]))
      throw new QpError(
        'MODEL_UNSUPPORTED',
        `${where} has a scale of ${s[i]} (channel ${i}); quantization scales must be positive finite numbers.`,
      );
  const perAxis = s.length > 1 || (scale.dims.length === 1 && scale.dims[0] > 1);
  let axis = perAxis ? (axisAttr ?? 1) : -1;
  if (axis < 0 && perAxis) axis += rank ?? 0;
  const { qmin, qmax } = storageRange(storage);
  return { qparams: { scale: Float32Array.from(s), zeroPoint: zp, qmin, qmax, axis }, storage };
}

/** Whether two quantizers have the same parameters (scales bit for bit). */
export function sameQParams(a: QParams, b: QParams): boolean {
  if (a.axis !== b.axis || a.qmin !== b.qmin || a.qmax !== b.qmax || a.scale.length !== b.scale.length) return false;
  for (let i = 0; i < a.scale.length; i++)
    if (a.scale[i] !== b.scale[i] || a.zeroPoint[i] !== b.zeroPoint[i]) return false;
  return true;
}
