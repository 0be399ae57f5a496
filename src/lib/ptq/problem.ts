/**
 * One layer's weight-rounding problem, as AdaRound and GPTQ see it: the weight as a
 * matrix (one row per output channel, K = Cin/groups·kh·kw columns), the Gram matrix
 * G = XXᵀ of the layer's im2col'ed inputs per group, and the fixed quantization grid
 * of each row. Everything the solvers need is here, so they are pure matrix code:
 * ‖WX − W̃X‖² = Σ_rows Δw·G·Δwᵀ. Conversions from and to the initializer layout live
 * here too. No engine, no graph.
 */
import { QpError } from '../util/errors.ts';
import { roundHalfToEven } from '../quant/round.ts';
import type { QParams } from '../quant/types.ts';
import { cholesky, choleskySolve } from './linalg.ts';

export interface LayerProblem {
  /** output channels (rows) and columns per row (K of one group) */
  rows: number;
  cols: number;
  /** groups: rows [i·rows/groups, (i+1)·rows/groups) read Gram matrix i */
  groups: number;
  /** row-major rows×cols, float64: the float weights whose rounding is chosen */
  w: Float64Array;
  /**
   * The weights the loss compares with, when not `w`: with inputs X̃ from the quantized
   * prefix and targets WX from FP32, ‖WX − W̃X̃‖² = ‖(W* − W̃)X̃‖² + const for
   * W* = W·XX̃ᵀ·(X̃X̃ᵀ)⁻¹ (see targetWeights), and `gram` is then X̃X̃ᵀ.
   */
  target?: Float64Array;
  /** groups×cols×cols, sums over all calibration positions */
  gram: Float64Array;
  /** number of positions (images × output pixels) summed into gram */
  positions: number;
  /** per-row grid: value = (code − zp)·scale, code in [qmin, qmax] */
  scale: Float64Array;
  zeroPoint: Int32Array;
  qmin: number;
  qmax: number;
}

/** Per-row rounding outcome of a solver: integer codes, row-major like `w`. */
export interface Rounding {
  codes: Int32Array;
}

export function groupOf(p: LayerProblem, row: number): number {
  return Math.floor(row / (p.rows / p.groups));
}

/** Round-to-nearest codes, exactly as quantizeToInt / the fake-quant graph compute them. */
export function nearestCodes(p: LayerProblem): Int32Array {
  const out = new Int32Array(p.w.length);
  for (let r = 0; r < p.rows; r++) {
    const s = Math.fround(p.scale[r]);
    const zp = p.zeroPoint[r];
    for (let c = 0; c < p.cols; c++) {
      const i = r * p.cols + c;
      const q = roundHalfToEven(Math.fround(Math.fround(p.w[i]) / s)) + zp;
      out[i] = q < p.qmin ? p.qmin : q > p.qmax ? p.qmax : q;
    }
  }
  return out;
}

/** Dequantized weight matrix of some codes. */
export function dequantizeCodes(p: LayerProblem, codes: Int32Array): Float64Array {
  const out = new Float64Array(codes.length);
  for (let r = 0; r < p.rows; r++) {
    const s = Math.fround(p.scale[r]);
    for (let c = 0; c < p.cols; c++) out[r * p.cols + c] = Math.fround((codes[r * p.cols + c] - p.zeroPoint[r]) * s);
  }
  return out;
}

/** Σ_rows d_r·G·d_rᵀ for a row-major rows×cols matrix d (‖dX‖² over all positions). */
export function quadraticError(p: LayerProblem, d: Float64Array): number {
  const K = p.cols;
  let total = 0;
  for (let r = 0; r < p.rows; r++) {
    const g = groupOf(p, r) * K * K;
    const o = r * K;
    for (let a = 0; a < K; a++) {
      const da = d[o + a];
      if (da === 0) continue;
      let s = 0;
      const ga = g + a * K;
      for (let b = 0; b < K; b++) s += p.gram[ga + b] * d[o + b];
      total += da * s;
    }
  }
  return total;
}

/** ‖(W − W̃)X‖² for the given codes. */
export function codesError(p: LayerProblem, codes: Int32Array): number {
  const q = dequantizeCodes(p, codes);
  const d = new Float64Array(q.length);
  const t = p.target ?? p.w;
  for (let i = 0; i < d.length; i++) d[i] = q[i] - t[i];
  return quadraticError(p, d);
}

/** ‖W*X̃‖² (‖WX‖² without a target): the output energy the errors are compared with. */
export function outputEnergy(p: LayerProblem): number {
  return quadraticError(p, p.target ?? p.w);
}

/**
 * The problem of a weight initializer. `axis` is its output-channel axis (0: Conv
 * [M, Cin/g, kh, kw] and Gemm transB [M, K]; 1: MatMul/Gemm [K, M], transposed here).
 * Throws QpError INTERNAL when the Gram size does not match the weight.
 */
export function layerProblem(
  data: Float32Array,
  dims: readonly number[],
  axis: number,
  groups: number,
  gram: Float64Array,
  positions: number,
  qp: QParams,
): LayerProblem {
  const rows = dims[axis];
  const cols = data.length / rows;
  if (axis !== 0 && !(axis === 1 && dims.length === 2)) {
    throw new QpError('INTERNAL', `A weight with output axis ${axis} and ${dims.length} dims cannot be reconstructed.`);
  }
  if (gram.length !== groups * cols * cols || rows % groups !== 0) {
    throw new QpError(
      'INTERNAL',
      `Gram matrix of ${gram.length} values does not fit a weight of ${rows}×${cols} in ${groups} groups.`,
    );
  }
  const w = new Float64Array(data.length);
  if (axis === 0) w.set(data);
  else for (let k = 0; k < cols; k++) for (let m = 0; m < rows; m++) w[m * cols + k] = data[k * rows + m];
  const scale = new Float64Array(rows);
  const zeroPoint = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const c = qp.scale.length === 1 ? 0 : r;
    scale[r] = qp.scale[c];
    zeroPoint[r] = qp.zeroPoint[c];
  }
  return { rows, cols, groups, w, gram, positions, scale, zeroPoint, qmin: qp.qmin, qmax: qp.qmax };
}

/** Fake-quantized values of some codes, back in the initializer's layout. */
export function codesToInitializer(p: LayerProblem, codes: Int32Array, axis: number): Float32Array {
  const q = dequantizeCodes(p, codes);
  if (axis === 0) return Float32Array.from(q);
  const out = new Float32Array(q.length);
  for (let m = 0; m < p.rows; m++) for (let k = 0; k < p.cols; k++) out[k * p.rows + m] = q[m * p.cols + k];
  return out;
}

/**
 * W* = W·C·G̃⁻¹ per group, where C = XX̃ᵀ (FP32 input against the quantized prefix's
 * input) and G̃ = X̃X̃ᵀ: the float weights that best reproduce the FP32 output from the
 * quantized input. Computed as W + W·(C − G̃)·(G̃ + damp·mean(diag)·I)⁻¹ so that damping
 * (needed where X̃ is rank deficient) only shrinks the correction: with X̃ = X, W* = W.
 * Damping the whole product instead moves W far along low-variance directions, so many
 * weights leave their round-to-nearest code and top-1 collapses (docs/reconstruction.md,
 * "Measurements behind the design").
 */
export function targetWeights(p: LayerProblem, cross: Float64Array, damp = 0.01): Float64Array {
  const K = p.cols;
  const per = p.rows / p.groups;
  const out = new Float64Array(p.w.length);
  const t = new Float64Array(K);
  for (let g = 0; g < p.groups; g++) {
    const o = g * K * K;
    const h = p.gram.slice(o, o + K * K);
    let mean = 0;
    for (let i = 0; i < K; i++) mean += h[i * K + i];
    mean /= K;
    for (let i = 0; i < K; i++) {
      if (h[i * K + i] === 0) h[i * K + i] = 1;
      h[i * K + i] += damp * (mean > 0 ? mean : 1);
    }
    const l = cholesky(h, K);
    // w* = w + (w·(C − G̃))·H⁻¹ per row: a product and two triangular solves (H symmetric),
    // rows·K² each instead of forming H⁻¹ and (C − G̃)·H⁻¹ (K³ each)
    for (let r = g * per; r < (g + 1) * per; r++) {
      t.fill(0);
      for (let a = 0; a < K; a++) {
        const wa = p.w[r * K + a];
        if (wa === 0) continue;
        const ra = o + a * K;
        for (let b = 0; b < K; b++) t[b] += wa * (cross[ra + b] - p.gram[ra + b]);
      }
      choleskySolve(l, K, t);
      for (let b = 0; b < K; b++) out[r * K + b] = p.w[r * K + b] + t[b];
    }
  }
  return out;
}
