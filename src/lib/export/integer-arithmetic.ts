/**
 * One output value of an integer convolution, step by step, as a course on integer
 * inference asks students to compute it (and as onnxruntime's QLinearConv computes it):
 * the int8 × uint8 products of the receptive field, their int32 sum, the int32 bias, the
 * requantization multiplier M = s_x·s_w / s_y both as onnxruntime applies it (a float32
 * multiply, kernels.ts requantize) and in the fixed-point form of gemmlowp/TFLite
 * (M = M0·2^−n with M0 an int32 in [2^30, 2^31), kernels.ts requantizeFixedPoint), and the
 * final 8-bit code with its real value.
 *
 * Pure: codes and parameters in, a plain record out (no graphs, no engine).
 */
import type { PixelArithmetic, PixelTerm } from '../protocol/deploy.ts';
import { QpError } from '../util/errors.ts';
import { fixedPointMultiplier, outputMultiplier, requantize, requantizeFixedPoint } from './kernels.ts';

/** One convolution layer's integers (NCHW, weights OIHW, groups allowed). */
export interface IntegerConv {
  /** input codes (uint8, zero point included) of one image, [C, H, W] */
  input: ArrayLike<number>;
  inputShape: [number, number, number];
  inputScale: number;
  inputZeroPoint: number;
  /** weight codes (int8, zero point included) [O, C/group, kH, kW] */
  weights: ArrayLike<number>;
  weightShape: [number, number, number, number];
  /** per output channel (length O) or one value */
  weightScale: ArrayLike<number>;
  weightZeroPoint: number;
  /** int32 bias codes (length O), or none */
  bias?: ArrayLike<number>;
  outputScale: number;
  outputZeroPoint: number;
  strides: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
  group: number;
}

export type { PixelArithmetic, PixelTerm } from '../protocol/deploy.ts';

/**
 * The arithmetic of output (channel, y, x) of an integer convolution (see module header).
 * Throws QpError INTERNAL for a position outside the output or a shape mismatch.
 */
export function convPixel(conv: IntegerConv, channel: number, y: number, x: number): PixelArithmetic {
  const [C, H, W] = conv.inputShape;
  const [O, Cg, kH, kW] = conv.weightShape;
  if (conv.input.length !== C * H * W || conv.weights.length !== O * Cg * kH * kW || Cg * conv.group !== C)
    throw new QpError('INTERNAL', 'The integer convolution has inconsistent shapes.');
  const oH = Math.floor((H + conv.pads[0] + conv.pads[2] - kH) / conv.strides[0]) + 1;
  const oW = Math.floor((W + conv.pads[1] + conv.pads[3] - kW) / conv.strides[1]) + 1;
  if (channel < 0 || channel >= O || y < 0 || y >= oH || x < 0 || x >= oW)
    throw new QpError('INTERNAL', `Output (${channel}, ${y}, ${x}) lies outside the ${O}×${oH}×${oW} output.`);
  const g = Math.floor(channel / (O / conv.group));
  const terms: PixelTerm[] = [];
  let accumulator = 0;
  for (let ci = 0; ci < Cg; ci++) {
    const c = g * Cg + ci;
    for (let ky = 0; ky < kH; ky++) {
      for (let kx = 0; kx < kW; kx++) {
        const iy = y * conv.strides[0] - conv.pads[0] + ky;
        const ix = x * conv.strides[1] - conv.pads[1] + kx;
        const inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
        // padding holds the input zero point: a centered 0
        const xv = inside ? conv.input[(c * H + iy) * W + ix] - conv.inputZeroPoint : 0;
        const wv = conv.weights[((channel * Cg + ci) * kH + ky) * kW + kx] - conv.weightZeroPoint;
        terms.push({ c, ky, kx, x: xv, w: wv, product: xv * wv });
        accumulator += xv * wv;
      }
    }
  }
  const bias = conv.bias ? conv.bias[channel] : 0;
  const total = accumulator + bias;
  const ws = conv.weightScale[conv.weightScale.length === 1 ? 0 : channel];
  const multiplier = outputMultiplier(conv.inputScale, ws, conv.outputScale);
  const fixedPoint = fixedPointMultiplier(multiplier);
  const code = requantize(total, multiplier, conv.outputZeroPoint, false);
  return {
    channel,
    y,
    x,
    terms,
    accumulator,
    bias,
    total,
    multiplier,
    scaled: Math.fround(Math.fround(total) * multiplier),
    code,
    fixedPoint,
    fixedPointCode: requantizeFixedPoint(total, fixedPoint, conv.outputZeroPoint, false),
    value: Math.fround((code - conv.outputZeroPoint) * conv.outputScale),
  };
}
