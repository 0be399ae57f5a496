/**
 * Dense symmetric positive definite linear algebra for the solvers (float64, row-major).
 * Every inner loop walks a row, never a column: at K in the thousands (ResNet-18's widest
 * 3×3 convs) a column walk misses the cache on every step (docs/reconstruction.md).
 */
import { QpError } from '../util/errors.ts';

/** In-place lower Cholesky factor of a symmetric positive definite n×n matrix (upper part zeroed). */
export function cholesky(a: Float64Array, n: number): Float64Array {
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let s = a[rj + j];
    for (let k = 0; k < j; k++) s -= a[rj + k] * a[rj + k];
    if (!(s > 0))
      throw new QpError('INTERNAL', `The Hessian is not positive definite at column ${j}; raise the damping.`);
    const l = Math.sqrt(s);
    a[rj + j] = l;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let t = a[ri + j];
      for (let k = 0; k < j; k++) t -= a[ri + k] * a[rj + k];
      a[ri + j] = t / l;
    }
    for (let k = j + 1; k < n; k++) a[rj + k] = 0;
  }
  return a;
}

/** L⁻¹ of a lower triangular L, row by row (row i is a combination of the rows above it). */
export function lowerInverse(l: Float64Array, n: number): Float64Array {
  const li = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    // row i of L·L⁻¹ = e_i: Σ_k l[i][k]·li[k][·] = e_i
    for (let k = 0; k < i; k++) {
      const a = l[ri + k];
      if (a === 0) continue;
      const rk = k * n;
      for (let j = 0; j <= k; j++) li[ri + j] -= a * li[rk + j];
    }
    const d = 1 / l[ri + i];
    for (let j = 0; j < i; j++) li[ri + j] *= d;
    li[ri + i] = d;
  }
  return li;
}

/** Solves (LLᵀ)·x = b in place for one right-hand side (L from `cholesky`). */
export function choleskySolve(l: Float64Array, n: number, b: Float64Array): Float64Array {
  // L·y = b
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    let s = b[i];
    for (let k = 0; k < i; k++) s -= l[ri + k] * b[k];
    b[i] = s / l[ri + i];
  }
  // Lᵀ·x = y, walking L's rows: subtract x_i·L[i][·] from the entries above i
  for (let i = n - 1; i >= 0; i--) {
    const ri = i * n;
    const x = b[i] / l[ri + i];
    b[i] = x;
    for (let k = 0; k < i; k++) b[k] -= x * l[ri + k];
  }
  return b;
}
