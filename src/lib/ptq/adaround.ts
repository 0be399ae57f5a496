/**
 * AdaRound (Nagel et al. 2020) for one layer, without autograd. Each weight rounds down
 * or up, softened as floor(w/s) + h(V) with the rectified sigmoid
 * h(V) = clip(σ(V)·(ζ − γ) + γ, 0, 1), ζ = 1.1, γ = −0.1. The loss is MQBench's:
 * reconstruction ‖ΔW·X‖² / positions (= Σ_rows Δw·G·Δwᵀ / positions, so its gradient is
 * 2·ΔW·G / positions, a matrix product, no autograd) plus λ·Σ(1 − |2h − 1|^β) with β
 * annealed linearly from 20 to 2 after a 20 % warm-up without the regulariser. Adam on V;
 * finally V ≥ 0 rounds up. Rows are independent given G, so the whole layer is one
 * batched update per iteration (rows × K² multiply-adds).
 */
import { type LayerProblem, groupOf } from './problem.ts';

export interface AdaRoundOptions {
  iters: number;
  /** regulariser weight (MQBench default 0.01) */
  lambda?: number;
  betaStart?: number;
  betaEnd?: number;
  /** fraction of iterations without the regulariser (MQBench 0.2) */
  warmup?: number;
  /** Adam step size on V */
  lr?: number;
}

const ZETA = 1.1;
const GAMMA = -0.1;

/** β at iteration t: MQBench's LinearTempDecay. */
export function beta(t: number, iters: number, start: number, end: number, warmup: number): number {
  const w = warmup * iters;
  if (t < w) return start;
  const rel = (t - w) / Math.max(1, iters - w);
  return end + (start - end) * Math.max(0, 1 - rel);
}

function rectSigmoid(v: number): number {
  const h = (1 / (1 + Math.exp(-v))) * (ZETA - GAMMA) + GAMMA;
  return h < 0 ? 0 : h > 1 ? 1 : h;
}

/** Solves one layer and returns its integer codes (row-major like p.w). */
export function adaround(p: LayerProblem, opts: AdaRoundOptions): Int32Array {
  const { rows, cols: K } = p;
  const n = p.w.length;
  const lambda = opts.lambda ?? 0.01;
  const bStart = opts.betaStart ?? 20;
  const bEnd = opts.betaEnd ?? 2;
  const warmup = opts.warmup ?? 0.2;
  const lr = opts.lr ?? 1e-2;
  const norm = 1 / Math.max(1, p.positions);
  const target = p.target ?? p.w;

  const floor = new Float64Array(n);
  const v = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    const s = Math.fround(p.scale[r]);
    for (let c = 0; c < K; c++) {
      const i = r * K + c;
      const x = Math.fround(Math.fround(p.w[i]) / s);
      const f = Math.floor(x);
      floor[i] = f;
      // start where h(V) equals the fractional part: soft weights equal the float weights
      const rest = x - f;
      v[i] = -Math.log((ZETA - GAMMA) / (rest - GAMMA) - 1);
    }
  }
  const m1 = new Float64Array(n);
  const m2 = new Float64Array(n);
  const d = new Float64Array(n); // soft weight − float weight
  const dw = new Float64Array(n); // ∂loss/∂w̃ (reconstruction part)
  const live = new Uint8Array(n); // 1 where the soft code is inside [qmin, qmax] and h is not clipped
  const h = new Float64Array(n);
  const B1 = 0.9, B2 = 0.999, EPS = 1e-8;

  for (let t = 0; t < opts.iters; t++) {
    const b = beta(t, opts.iters, bStart, bEnd, warmup);
    const reg = t >= warmup * opts.iters;
    for (let r = 0; r < rows; r++) {
      const s = Math.fround(p.scale[r]);
      const zp = p.zeroPoint[r];
      for (let c = 0; c < K; c++) {
        const i = r * K + c;
        const sig = 1 / (1 + Math.exp(-v[i]));
        const raw = sig * (ZETA - GAMMA) + GAMMA;
        const hi = raw < 0 ? 0 : raw > 1 ? 1 : raw;
        h[i] = hi;
        let code = floor[i] + hi + zp;
        let inside = raw > 0 && raw < 1 ? 1 : 0;
        if (code < p.qmin) (code = p.qmin), (inside = 0);
        else if (code > p.qmax) (code = p.qmax), (inside = 0);
        live[i] = inside;
        d[i] = (code - zp) * s - target[i];
      }
    }
    // dw = 2·d·G / positions, row by row with the row's group matrix
    dw.fill(0);
    for (let r = 0; r < rows; r++) {
      const g = groupOf(p, r) * K * K;
      const o = r * K;
      for (let a = 0; a < K; a++) {
        const da = d[o + a];
        if (da === 0) continue;
        const ga = g + a * K;
        for (let c = 0; c < K; c++) dw[o + c] += da * p.gram[ga + c];
      }
    }
    const c1 = 1 / (1 - Math.pow(B1, t + 1));
    const c2 = 1 / (1 - Math.pow(B2, t + 1));
    for (let r = 0; r < rows; r++) {
      const s = Math.fround(p.scale[r]);
      for (let c = 0; c < K; c++) {
        const i = r * K + c;
        const sig = 1 / (1 + Math.exp(-v[i]));
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
  const codes = new Int32Array(n);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < K; c++) {
      const i = r * K + c;
      const q = floor[i] + (v[i] >= 0 ? 1 : 0) + p.zeroPoint[r];
      codes[i] = q < p.qmin ? p.qmin : q > p.qmax ? p.qmax : q;
    }
  }
  return codes;
}

export { rectSigmoid };
