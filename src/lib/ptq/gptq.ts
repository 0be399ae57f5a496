/**
 * GPTQ (Frantar et al. 2023) for one layer: columns are quantized one after another in
 * their natural order, and each column's rounding error is fed back into the columns
 * not yet quantized through the upper Cholesky factor U of the inverse Hessian
 * (H = 2G + damping, H⁻¹ = UᵀU): w_j −= (w_i − q_i)/U_ii · U_ij for j > i. The grid
 * (scale, zero point per row) stays the observer's; only the codes change.
 * Dense float64 linear algebra, O(K³) per group plus O(rows·K²).
 */
import { QpError } from '../protocol/errors.ts';
import { roundHalfToEven } from '../quant/round.ts';
import type { LayerProblem } from './problem.ts';

export interface GptqOptions {
  /** damping as a fraction of the mean diagonal of H (GPTQ default 0.01) */
  damp?: number;
}

/** In-place lower Cholesky factor of a symmetric positive definite n×n matrix (row-major). */
export function cholesky(a: Float64Array, n: number): Float64Array {
  for (let j = 0; j < n; j++) {
    let s = a[j * n + j];
    for (let k = 0; k < j; k++) s -= a[j * n + k] * a[j * n + k];
    if (!(s > 0)) throw new QpError('INTERNAL', `The Hessian is not positive definite at column ${j}; raise the damping.`);
    const l = Math.sqrt(s);
    a[j * n + j] = l;
    for (let i = j + 1; i < n; i++) {
      let t = a[i * n + j];
      for (let k = 0; k < j; k++) t -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = t / l;
    }
    for (let k = j + 1; k < n; k++) a[j * n + k] = 0;
  }
  return a;
}

/** Inverse of a symmetric positive definite matrix from its lower Cholesky factor. */
export function spdInverse(h: Float64Array, n: number): Float64Array {
  const l = cholesky(Float64Array.from(h), n);
  // L⁻¹ by forward substitution, then H⁻¹ = L⁻ᵀL⁻¹
  const li = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    li[j * n + j] = 1 / l[j * n + j];
    for (let i = j + 1; i < n; i++) {
      let s = 0;
      for (let k = j; k < i; k++) s += l[i * n + k] * li[k * n + j];
      li[i * n + j] = -s / l[i * n + i];
    }
  }
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < n; k++) s += li[k * n + i] * li[k * n + j];
      inv[i * n + j] = s;
      inv[j * n + i] = s;
    }
  }
  return inv;
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

/** Solves one layer and returns its integer codes (row-major like p.w). */
export function gptq(p: LayerProblem, opts: GptqOptions = {}): Int32Array {
  const K = p.cols;
  const per = p.rows / p.groups;
  const codes = new Int32Array(p.w.length);
  // GPTQ quantizes the target directly: its error feedback works on ‖(W* − W̃)X̃‖²
  const w = Float64Array.from(p.target ?? p.w);
  for (let g = 0; g < p.groups; g++) {
    const hinv = spdInverse(dampedHessian(p.gram, g * K * K, K, opts.damp ?? 0.01), K);
    // upper factor U of H⁻¹ = UᵀU is the transpose of its lower Cholesky factor
    const u = cholesky(hinv, K);
    for (let r = g * per; r < (g + 1) * per; r++) {
      const s = Math.fround(p.scale[r]);
      const zp = p.zeroPoint[r];
      const o = r * K;
      for (let i = 0; i < K; i++) {
        let q = roundHalfToEven(Math.fround(Math.fround(w[o + i]) / s)) + zp;
        q = q < p.qmin ? p.qmin : q > p.qmax ? p.qmax : q;
        codes[o + i] = q;
        const err = (w[o + i] - Math.fround((q - zp) * s)) / u[i * K + i];
        // U_ij = L_ji (L lower): row j, column i of the factor
        for (let j = i + 1; j < K; j++) w[o + j] -= err * u[j * K + i];
      }
    }
  }
  return codes;
}
