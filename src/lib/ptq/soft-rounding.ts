/**
 * AdaRound's soft rounding of one weight tensor, in the tensor's own layout, for the
 * reconstruction methods that get their gradients from the engine (block-recon.ts): each
 * weight is floor(w/s) + h(V) on the observer's grid, h(V) = clip(σ(V)·(ζ − γ) + γ, 0, 1)
 * the rectified sigmoid (ζ = 1.1, γ = −0.1), V initialised so that h(V) is the fractional
 * part (the soft weights start equal to the float weights). The rounding regulariser
 * Σ 1 − |2h − 1|^β pushes every h to 0 or 1; β follows MQBench's LinearTempDecay. After
 * optimisation V ≥ 0 rounds up. Pure math: no engine, no graph.
 */
import type { QParams } from '../quant/types.ts';
import { channelLayout, forEachChannelRun } from '../quant/quantizer.ts';
import { roundHalfToEven } from '../quant/round.ts';

export const ZETA = 1.1;
export const GAMMA = -0.1;

/** β at iteration t of `iters`: `start` during the warm-up fraction, then linear to `end` (MQBench's LinearTempDecay). */
export function beta(t: number, iters: number, start: number, end: number, warmup: number): number {
  const w = warmup * iters;
  if (t < w) return start;
  const rel = (t - w) / Math.max(1, iters - w);
  return end + (start - end) * Math.max(0, 1 - rel);
}

/** h(V): the rectified sigmoid, in [0, 1]. */
export function rectSigmoid(v: number): number {
  const h = (1 / (1 + Math.exp(-v))) * (ZETA - GAMMA) + GAMMA;
  return h < 0 ? 0 : h > 1 ? 1 : h;
}

/** ∂h/∂V: σ(V)(1 − σ(V))(ζ − γ) where h is not clipped, 0 where it is. */
export function rectSigmoidGrad(v: number): number {
  const sig = 1 / (1 + Math.exp(-v));
  const raw = sig * (ZETA - GAMMA) + GAMMA;
  return raw > 0 && raw < 1 ? sig * (1 - sig) * (ZETA - GAMMA) : 0;
}

/** The rounding regulariser of one value: 1 − |2h − 1|^β (0 at h ∈ {0, 1}, 1 at h = ½). */
export function roundingPenalty(h: number, b: number): number {
  return 1 - Math.pow(Math.abs(2 * h - 1), b);
}

/** ∂/∂h of roundingPenalty: −2β·|2h − 1|^(β−1)·sign(2h − 1) (0 at h = ½). */
export function roundingPenaltyGrad(h: number, b: number): number {
  const u = 2 * h - 1;
  if (u === 0) return 0;
  return -2 * b * Math.pow(Math.abs(u), b - 1) * Math.sign(u);
}

/** V with h(V) = rest for a fractional part rest in [0, 1). */
export function initialV(rest: number): number {
  return -Math.log((ZETA - GAMMA) / (rest - GAMMA) - 1);
}

/** One weight tensor's rounding variables and what a step needs between forward and backward. */
export class SoftRounding {
  readonly size: number;
  /** floor(w/s) */
  readonly floor: Float32Array;
  /** the rounding variables */
  readonly v: Float32Array;
  /** ∂(soft weight)/∂V of the last soft(): s·∂h/∂V where the code is not clamped, else 0 */
  private readonly dw: Float32Array;
  private readonly h: Float32Array;
  private readonly chan: Int32Array;

  constructor(
    readonly w: Float32Array,
    readonly dims: readonly number[],
    readonly qp: QParams,
  ) {
    const n = (this.size = w.length);
    this.floor = new Float32Array(n);
    this.v = new Float32Array(n);
    this.dw = new Float32Array(n);
    this.h = new Float32Array(n);
    this.chan = new Int32Array(n);
    forEachChannelRun(channelLayout(dims, qp.axis, n), (c, start, end) => {
      const s = qp.scale[c];
      for (let i = start; i < end; i++) {
        this.chan[i] = c;
        const x = Math.fround(w[i] / s);
        const f = Math.floor(x);
        this.floor[i] = f;
        this.v[i] = initialV(x - f);
      }
    });
  }

  /** Soft weights (clamp(floor + h(V) + zp, qmin, qmax) − zp)·s into `out`; keeps what backward needs. */
  soft(out: Float32Array): void {
    const { qp, v, floor, h, dw, chan } = this;
    for (let i = 0; i < this.size; i++) {
      const c = chan[i];
      const s = qp.scale[c];
      const zp = qp.zeroPoint[c];
      const sig = 1 / (1 + Math.exp(-v[i]));
      const raw = sig * (ZETA - GAMMA) + GAMMA;
      const hi = raw < 0 ? 0 : raw > 1 ? 1 : raw;
      h[i] = hi;
      let code = floor[i] + hi + zp;
      let live = raw > 0 && raw < 1;
      if (code < qp.qmin) {
        code = qp.qmin;
        live = false;
      } else if (code > qp.qmax) {
        code = qp.qmax;
        live = false;
      }
      dw[i] = live ? s * sig * (1 - sig) * (ZETA - GAMMA) : 0;
      out[i] = (code - zp) * s;
    }
  }

  /**
   * ∂loss/∂V into `out` from ∂loss/∂(soft weights) `gw` (of the last soft()), plus
   * `lambda`·∂regulariser/∂V at `b` when b is not null. Returns the regulariser's value (0 without).
   */
  gradient(gw: ArrayLike<number>, b: number | null, lambda: number, out: Float32Array): number {
    const { v, h, dw } = this;
    let reg = 0;
    for (let i = 0; i < this.size; i++) {
      let g = gw[i] * dw[i];
      if (b !== null) {
        reg += roundingPenalty(h[i], b);
        const dh = rectSigmoidGrad(v[i]);
        if (dh !== 0) g += lambda * roundingPenaltyGrad(h[i], b) * dh;
      }
      out[i] = g;
    }
    return lambda * reg;
  }

  /** Hard codes: floor + [V ≥ 0] + zp, clamped (the integers the model will hold). */
  codes(): Int32Array {
    const out = new Int32Array(this.size);
    for (let i = 0; i < this.size; i++) {
      const c = this.chan[i];
      const q = this.floor[i] + (this.v[i] >= 0 ? 1 : 0) + this.qp.zeroPoint[c];
      out[i] = q < this.qp.qmin ? this.qp.qmin : q > this.qp.qmax ? this.qp.qmax : q;
    }
    return out;
  }

  /** Fake-quantized values of the hard codes, exactly as the quantizer writes them (float32 (q − zp)·s). */
  hardValues(): Float32Array {
    const codes = this.codes();
    const out = new Float32Array(this.size);
    for (let i = 0; i < this.size; i++) {
      const c = this.chan[i];
      out[i] = (codes[i] - this.qp.zeroPoint[c]) * this.qp.scale[c];
    }
    return out;
  }

  /** Fraction of weights whose hard code differs from round-to-nearest. */
  flips(): number {
    const codes = this.codes();
    let n = 0;
    for (let i = 0; i < this.size; i++) {
      const c = this.chan[i];
      let q = roundHalfToEven(Math.fround(this.w[i] / this.qp.scale[c])) + this.qp.zeroPoint[c];
      q = q < this.qp.qmin ? this.qp.qmin : q > this.qp.qmax ? this.qp.qmax : q;
      if (q !== codes[i]) n++;
    }
    return this.size ? n / this.size : 0;
  }
}
