/**
 * AdaRound (Nagel et al. 2020) for one layer, without autograd. Each weight rounds down
 * or up, softened as floor(w/s) + h(V) with the rectified sigmoid
 * h(V) = clip(σ(V)·(ζ − γ) + γ, 0, 1), ζ = 1.1, γ = −0.1. The loss is MQBench's:
 * reconstruction ‖ΔW·X‖² / positions (= Σ_rows Δw·G·Δwᵀ / positions, so its gradient is
 * 2·ΔW·G / positions, a matrix product, no autograd) plus λ·Σ(1 − |2h − 1|^β) with β
 * annealed linearly from 20 to 2 after a 20 % warm-up without the regulariser. Adam on V;
 * finally V ≥ 0 rounds up, and polishCodes moves single weights to the other end of their
 * interval where that lowers the exact loss (a V that saturated early, where the rectified
 * sigmoid's gradient is zero, cannot come back by itself; a few such moves bring a layer
 * close to the optimum over all roundings, docs/reconstruction.md). Rows are independent
 * given G, so the whole layer is one
 * batched update per iteration (rows × K² multiply-adds).
 */
import type { LayerProblem } from './problem.ts';
import { GAMMA, ZETA, beta } from './soft-rounding.ts';

export interface AdaRoundOptions {
  iters: number;
  /** regulariser weight (MQBench default 0.01) */
  lambda?: number;
  betaStart?: number;
  betaEnd?: number;
  /** fraction of iterations without the regulariser (MQBench 0.2) */
  warmup?: number;
  /** Adam step size on V (default DEFAULT_LR) */
  lr?: number;
  /** finish with polishCodes on the exact loss (default true) */
  polish?: boolean;
}

/**
 * Adam's step size on V. MQBench uses 1e-3 over 20,000 mini-batch steps; with the exact
 * loss (full Gram matrix) and a few hundred steps, V has to move further per step. Chosen
 * from measured errors (docs/reconstruction.md, "Adam's step"): a smaller step lost on every
 * layer tried, and a larger one missed the optimum on some enumerated 3×3 channels of
 * ptq-solvers.test.ts.
 */
export const DEFAULT_LR = 0.03;

/**
 * The gradient's matrix product: out = d·G row by row (each row with its group's K×K Gram
 * matrix). The only O(rows·K²) part of a step; everything else is O(rows·K).
 */
export type GramProduct = (d: Float64Array, out: Float64Array) => void | Promise<void>;

/**
 * d·G in plain TypeScript, four rows at a time so each Gram row is read once per four
 * output rows (the 1×1 convs of MobileNet-V2, K up to 960, are memory bound otherwise).
 */
export function jsGramProduct(p: LayerProblem): GramProduct {
  const K = p.cols;
  const per = p.rows / p.groups;
  return (d, out) => {
    out.fill(0);
    for (let g = 0; g < p.groups; g++) {
      const go = g * K * K;
      const end = (g + 1) * per;
      let r = g * per;
      for (; r + 4 <= end; r += 4) {
        const o0 = r * K,
          o1 = o0 + K,
          o2 = o1 + K,
          o3 = o2 + K;
        for (let a = 0; a < K; a++) {
          const d0 = d[o0 + a],
            d1 = d[o1 + a],
            d2 = d[o2 + a],
            d3 = d[o3 + a];
          if (d0 === 0 && d1 === 0 && d2 === 0 && d3 === 0) continue;
          const ga = go + a * K;
          for (let c = 0; c < K; c++) {
            const gv = p.gram[ga + c];
            out[o0 + c] += d0 * gv;
            out[o1 + c] += d1 * gv;
            out[o2 + c] += d2 * gv;
            out[o3 + c] += d3 * gv;
          }
        }
      }
      for (; r < end; r++) {
        const o = r * K;
        for (let a = 0; a < K; a++) {
          const da = d[o + a];
          if (da === 0) continue;
          const ga = go + a * K;
          for (let c = 0; c < K; c++) out[o + c] += da * p.gram[ga + c];
        }
      }
    }
  };
}

const B1 = 0.9,
  B2 = 0.999,
  EPS = 1e-8;

/** One layer's optimisation state: V, Adam moments and the buffers of a step. */
class Stepper {
  readonly n: number;
  readonly floor: Float64Array;
  readonly v: Float64Array;
  readonly m1: Float64Array;
  readonly m2: Float64Array;
  /** soft weight − target weight */
  readonly d: Float64Array;
  /** d·G */
  readonly dw: Float64Array;
  readonly live: Uint8Array;
  readonly h: Float64Array;
  /** σ(V) of the current step, shared by soft() and update() */
  readonly sig: Float64Array;
  readonly lambda: number;
  readonly bStart: number;
  readonly bEnd: number;
  readonly warmup: number;
  readonly lr: number;
  readonly norm: number;
  readonly target: Float64Array;

  constructor(
    readonly p: LayerProblem,
    readonly opts: AdaRoundOptions,
  ) {
    const { rows, cols: K } = p;
    const n = (this.n = p.w.length);
    this.lambda = opts.lambda ?? 0.01;
    this.bStart = opts.betaStart ?? 20;
    this.bEnd = opts.betaEnd ?? 2;
    this.warmup = opts.warmup ?? 0.2;
    this.lr = opts.lr ?? DEFAULT_LR;
    this.norm = 1 / Math.max(1, p.positions);
    this.target = p.target ?? p.w;
    this.floor = new Float64Array(n);
    this.v = new Float64Array(n);
    for (let r = 0; r < rows; r++) {
      const s = Math.fround(p.scale[r]);
      for (let c = 0; c < K; c++) {
        const i = r * K + c;
        const x = Math.fround(Math.fround(p.w[i]) / s);
        const f = Math.floor(x);
        this.floor[i] = f;
        // start where h(V) equals the fractional part: soft weights equal the float weights
        const rest = x - f;
        this.v[i] = -Math.log((ZETA - GAMMA) / (rest - GAMMA) - 1);
      }
    }
    this.m1 = new Float64Array(n);
    this.m2 = new Float64Array(n);
    this.d = new Float64Array(n);
    this.dw = new Float64Array(n);
    this.live = new Uint8Array(n);
    this.h = new Float64Array(n);
    this.sig = new Float64Array(n);
  }

  /** Soft weights of V: fills d, h and live. */
  soft(): void {
    const { p, v, floor, h, live, d, target, sig: sg } = this;
    const K = p.cols;
    for (let r = 0; r < p.rows; r++) {
      const s = Math.fround(p.scale[r]);
      const zp = p.zeroPoint[r];
      for (let c = 0; c < K; c++) {
        const i = r * K + c;
        const sig = 1 / (1 + Math.exp(-v[i]));
        sg[i] = sig;
        const raw = sig * (ZETA - GAMMA) + GAMMA;
        const hi = raw < 0 ? 0 : raw > 1 ? 1 : raw;
        h[i] = hi;
        let code = floor[i] + hi + zp;
        let inside = raw > 0 && raw < 1 ? 1 : 0;
        if (code < p.qmin) {
          code = p.qmin;
          inside = 0;
        } else if (code > p.qmax) {
          code = p.qmax;
          inside = 0;
        }
        live[i] = inside;
        d[i] = (code - zp) * s - target[i];
      }
    }
  }

  /** Adam step on V from dw = d·G (filled by the product) and the regulariser. */
  update(t: number): void {
    const { p, v, h, live, dw, m1, m2, norm, lambda, lr, sig: sg } = this;
    const iters = this.opts.iters;
    const b = beta(t, iters, this.bStart, this.bEnd, this.warmup);
    const reg = t >= this.warmup * iters;
    const K = p.cols;
    const c1 = 1 / (1 - Math.pow(B1, t + 1));
    const c2 = 1 / (1 - Math.pow(B2, t + 1));
    for (let r = 0; r < p.rows; r++) {
      const s = Math.fround(p.scale[r]);
      for (let c = 0; c < K; c++) {
        const i = r * K + c;
        const sig = sg[i];
        const dh = sig * (1 - sig) * (ZETA - GAMMA); // ∂h/∂V where h is not clipped
        let g = live[i] ? 2 * norm * dw[i] * s * dh : 0;
        if (reg) {
          const u = 2 * h[i] - 1;
          const au = Math.abs(u);
          if (au > 0 && h[i] > 0 && h[i] < 1) g += -lambda * b * Math.pow(au, b - 1) * Math.sign(u) * 2 * dh;
        }
        m1[i] = B1 * m1[i] + (1 - B1) * g;
        m2[i] = B2 * m2[i] + (1 - B2) * g * g;
        v[i] -= (lr * m1[i] * c1) / (Math.sqrt(m2[i] * c2) + EPS);
      }
    }
  }

  /** Final hard rounding: V ≥ 0 rounds up. */
  codes(): Int32Array {
    const { p, v, floor } = this;
    const K = p.cols;
    const codes = new Int32Array(this.n);
    for (let r = 0; r < p.rows; r++) {
      for (let c = 0; c < K; c++) {
        const i = r * K + c;
        const q = floor[i] + (v[i] >= 0 ? 1 : 0) + p.zeroPoint[r];
        codes[i] = q < p.qmin ? p.qmin : q > p.qmax ? p.qmax : q;
      }
    }
    return codes;
  }
}

/** Solves one layer with the TypeScript product and returns its integer codes (row-major like p.w). */
export function adaround(p: LayerProblem, opts: AdaRoundOptions): Int32Array {
  const st = new Stepper(p, opts);
  const product = jsGramProduct(p);
  for (let t = 0; t < opts.iters; t++) {
    st.soft();
    void product(st.d, st.dw);
    st.update(t);
  }
  return finish(p, st.codes(), opts);
}

function finish(p: LayerProblem, codes: Int32Array, opts: AdaRoundOptions): Int32Array {
  if (opts.polish ?? true) polishCodes(p, codes);
  return codes;
}

/**
 * adaround with a product that may run elsewhere (an onnxruntime MatMul session, see
 * gram-matmul.ts); the same steps, awaited.
 */
export async function adaroundWith(p: LayerProblem, opts: AdaRoundOptions, product: GramProduct): Promise<Int32Array> {
  const st = new Stepper(p, opts);
  for (let t = 0; t < opts.iters; t++) {
    st.soft();
    await product(st.d, st.dw);
    st.update(t);
  }
  return finish(p, st.codes(), opts);
}

/**
 * Greedy refinement of hard codes on the exact loss Σ_rows d·G·dᵀ (d = dequantized − target):
 * each weight may sit on either end of its AdaRound interval, floor(w/s) or floor(w/s) + 1
 * (clipped to [qmin, qmax]); a weight moves to the other end whenever that lowers the row's
 * loss (Δ = 2δ·(d·G)_i + δ²·G_ii for a move of δ), in sweeps over the row until a sweep
 * moves nothing or `maxSweeps` is reached. The loss never rises, so the result is never worse
 * than the codes it starts from. Returns the number of weights moved; `codes` is updated in place.
 */
export function polishCodes(p: LayerProblem, codes: Int32Array, maxSweeps = 8): number {
  const K = p.cols;
  const per = p.rows / p.groups;
  const target = p.target ?? p.w;
  const d = new Float64Array(K);
  const e = new Float64Array(K);
  let moved = 0;
  for (let r = 0; r < p.rows; r++) {
    const g = Math.floor(r / per) * K * K;
    const s = Math.fround(p.scale[r]);
    const zp = p.zeroPoint[r];
    const o = r * K;
    const value = (q: number) => Math.fround((q - zp) * s);
    for (let c = 0; c < K; c++) d[c] = value(codes[o + c]) - target[o + c];
    e.fill(0);
    for (let a = 0; a < K; a++) {
      const da = d[a];
      if (da === 0) continue;
      const ga = g + a * K;
      for (let b = 0; b < K; b++) e[b] += da * p.gram[ga + b];
    }
    for (let sweep = 0; sweep < maxSweeps; sweep++) {
      let changed = 0;
      for (let c = 0; c < K; c++) {
        const lo = Math.floor(Math.fround(Math.fround(p.w[o + c]) / s)) + zp;
        const a = Math.min(p.qmax, Math.max(p.qmin, lo));
        const b = Math.min(p.qmax, Math.max(p.qmin, lo + 1));
        const cur = codes[o + c];
        const alt = cur === a ? b : a;
        if (alt === cur) continue;
        const delta = value(alt) - value(cur);
        const gain = 2 * delta * e[c] + delta * delta * p.gram[g + c * K + c];
        // strictly lower, beyond float noise of the running sums
        if (!(gain < -1e-12 * Math.abs(e[c] * delta))) continue;
        codes[o + c] = alt;
        d[c] += delta;
        const gc = g + c * K;
        for (let k = 0; k < K; k++) e[k] += delta * p.gram[gc + k];
        changed++;
      }
      moved += changed;
      if (changed === 0) break;
    }
  }
  return moved;
}
