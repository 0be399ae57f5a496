/**
 * The fake quantizer with a learned step size, element by element in TypeScript: the
 * reference for the gradients the engine graphs compute (train-graph.ts), and what the
 * unit tests check against finite differences. y = s·clip(round(x/s), lo, hi) with
 * lo = qmin − zp, hi = qmax − zp (round half to even, as ONNX Round); the straight-through
 * estimator passes dY where round(x/s) lies inside [lo, hi]; LSQ's step-size gradient
 * (Esser et al. 2020, without the gradient scale, which Adam makes irrelevant) is
 * Σ dY·(c − x/s) inside and Σ dY·c outside, c the clipped code. With QDrop's mask m
 * (1: quantized, 0: float), y' = m·y + (1 − m)·x. Pure math.
 */
import { roundHalfToEven } from '../quant/round.ts';

export interface FakeQuantGrads {
  /** ∂L/∂x per element */
  gx: Float64Array;
  /** ∂L/∂s */
  gs: number;
}

/** Forward: the fake-quantized (and, with a mask, partly dropped) values of `x`. */
export function fakeQuantForward(
  x: ArrayLike<number>,
  s: number,
  lo: number,
  hi: number,
  mask?: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = Math.min(hi, Math.max(lo, roundHalfToEven(x[i] / s)));
    out[i] = mask && !mask[i] ? x[i] : c * s;
  }
  return out;
}

/** Backward of fakeQuantForward for the upstream gradient `gy`. */
export function fakeQuantBackward(
  x: ArrayLike<number>,
  gy: ArrayLike<number>,
  s: number,
  lo: number,
  hi: number,
  mask?: ArrayLike<number>,
): FakeQuantGrads {
  const gx = new Float64Array(x.length);
  let gs = 0;
  for (let i = 0; i < x.length; i++) {
    if (mask && !mask[i]) {
      gx[i] = gy[i];
      continue;
    }
    const u = x[i] / s;
    const r = roundHalfToEven(u);
    const c = Math.min(hi, Math.max(lo, r));
    const inside = r === c;
    gx[i] = inside ? gy[i] : 0;
    gs += gy[i] * (inside ? c - u : c);
  }
  return { gx, gs };
}
