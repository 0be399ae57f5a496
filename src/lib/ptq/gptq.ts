/**
 * GPTQ (Frantar et al. 2023) for one layer: columns are quantized one after another in
 * their natural order, and each column's rounding error is fed back into the columns
 * not yet quantized through the upper Cholesky factor U of the inverse Hessian
 * (H = 2G + damping, H⁻¹ = UᵀU): w_j −= (w_i − q_i)/U_ii · U_ij for j > i. The grid
 * (scale, zero point per row) stays the observer's; only the codes change.
 * Dense float64 linear algebra, O(K³) per group plus O(rows·K²).
 */
import { roundHalfToEven } from '../quant/round.ts';
import type { LayerProblem } from './problem.ts';
import { cholesky, lowerInverse } from './linalg.ts';

export interface GptqOptions {
  /** damping as a fraction of the mean diagonal of H (GPTQ default 0.01) */
  damp?: number;
}

/** H = 2G + damp·mean(diag)·I; columns nobody reads (G_ii = 0) get H_ii = 1 (GPTQ's dead columns). */
export function dampedHessian(gram: Float64Array, offset: number, n: number, damp: number): Float64Array {
  const h = new Float64Array(n * n);
  let mean = 0;
  for (let i = 0; i < n; i++) mean += 2 * gram[offset + i * n + i];
  mean /= n;
  for (let i = 0; i < n * n; i++) h[i] = 2 * gram[offset + i];
  for (let i = 0; i < n; i++) {
    if (h[i * n + i] === 0) h[i * n + i] = 1;
    h[i * n + i] += damp * (mean > 0 ? mean : 1);
  }
  return h;
}

/**
 * The upper triangular U with H⁻¹ = UᵀU, without forming H⁻¹: with J the order reversal and
 * JHJ = MMᵀ (M lower), H = (JMJ)(JMJ)ᵀ with JMJ upper, so H⁻¹ = UᵀU for U = (JMJ)⁻¹ = J·M⁻¹·J.
 * One Cholesky and one triangular inverse (K³/3) instead of an inverse and a second Cholesky.
 */
export function inverseUpperFactor(h: Float64Array, n: number): Float64Array {
  const r = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) r[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
  const mi = lowerInverse(cholesky(r, n), n);
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) u[i * n + j] = mi[(n - 1 - i) * n + (n - 1 - j)];
  return u;
}

/** Solves one layer and returns its integer codes (row-major like p.w). */
export function gptq(p: LayerProblem, opts: GptqOptions = {}): Int32Array {
  const K = p.cols;
  const per = p.rows / p.groups;
  const codes = new Int32Array(p.w.length);
  // GPTQ quantizes the target directly: its error feedback works on ‖(W* − W̃)X̃‖²
  const w = Float64Array.from(p.target ?? p.w);
  for (let g = 0; g < p.groups; g++) {
    const u = inverseUpperFactor(dampedHessian(p.gram, g * K * K, K, opts.damp ?? 0.01), K);
    for (let r = g * per; r < (g + 1) * per; r++) {
      const s = Math.fround(p.scale[r]);
      const zp = p.zeroPoint[r];
      const o = r * K;
      for (let i = 0; i < K; i++) {
        let q = roundHalfToEven(Math.fround(Math.fround(w[o + i]) / s)) + zp;
        q = q < p.qmin ? p.qmin : q > p.qmax ? p.qmax : q;
        codes[o + i] = q;
        const err = (w[o + i] - Math.fround((q - zp) * s)) / u[i * K + i];
        const ui = i * K;
        for (let j = i + 1; j < K; j++) w[o + j] -= err * u[ui + j];
      }
    }
  }
  return codes;
}
