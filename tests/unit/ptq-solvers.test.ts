import { describe, expect, it } from 'vitest';
import { adaround, polishCodes } from '../../src/lib/ptq/adaround.ts';
import { gptq, dampedHessian, inverseUpperFactor } from '../../src/lib/ptq/gptq.ts';
import { choleskySolve, cholesky, lowerInverse } from '../../src/lib/ptq/linalg.ts';
import { codesError, nearestCodes, targetWeights, type LayerProblem } from '../../src/lib/ptq/problem.ts';
import { roundHalfToEven } from '../../src/lib/quant/round.ts';
import { mulberry32 } from '../../src/lib/util/random.ts';

/** Reference inverse of an SPD matrix, H⁻¹ = L⁻ᵀL⁻¹ (the solvers never form it). */
function spdInverse(h: Float64Array, n: number): Float64Array {
  const li = lowerInverse(cholesky(Float64Array.from(h), n), n);
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = Math.max(i, j); k < n; k++) s += li[k * n + i] * li[k * n + j];
      inv[i * n + j] = s;
    }
  return inv;
}

/** Gaussian-ish noise from the project's seeded generator (sum of uniforms). */
function gauss(rand: () => number): number {
  let s = 0;
  for (let i = 0; i < 6; i++) s += rand();
  return (s - 3) * Math.SQRT2;
}

/**
 * A layer with `rows` outputs reading K inputs at P positions. Inputs are correlated
 * (as neighbouring pixels are): x = mix·shared + noise. Symmetric signed per-row grid.
 */
function problem(seed: number, rows: number, K: number, P: number, bits: number): LayerProblem {
  const rand = mulberry32(seed);
  const x = new Float64Array(K * P);
  for (let p = 0; p < P; p++) {
    const shared = gauss(rand);
    for (let k = 0; k < K; k++) x[k * P + p] = 0.8 * shared + 0.6 * gauss(rand) + 0.3;
  }
  const gram = new Float64Array(K * K);
  for (let a = 0; a < K; a++)
    for (let b = 0; b < K; b++) {
      let s = 0;
      for (let p = 0; p < P; p++) s += x[a * P + p] * x[b * P + p];
      gram[a * K + b] = s;
    }
  const w = new Float64Array(rows * K);
  for (let i = 0; i < w.length; i++) w[i] = Math.fround(0.1 * gauss(rand));
  const qmax = 2 ** (bits - 1) - 1;
  const scale = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0; c < K; c++) m = Math.max(m, Math.abs(w[r * K + c]));
    scale[r] = Math.fround(m / (qmax + 0.5));
  }
  return {
    rows,
    cols: K,
    groups: 1,
    w,
    gram,
    positions: P,
    scale,
    zeroPoint: new Int32Array(rows),
    qmin: -qmax - 1,
    qmax,
  };
}

/** The best of all 2^K floor/ceil roundings of a one-row problem. */
function bruteForce(p: LayerProblem): number {
  const K = p.cols;
  const s = Math.fround(p.scale[0]);
  const fl = Array.from(p.w, (v) => Math.floor(Math.fround(Math.fround(v) / s)));
  let best = Infinity;
  const codes = new Int32Array(K);
  for (let mask = 0; mask < 1 << K; mask++) {
    for (let c = 0; c < K; c++) codes[c] = Math.min(p.qmax, Math.max(p.qmin, fl[c] + ((mask >> c) & 1)));
    best = Math.min(best, codesError(p, codes));
  }
  return best;
}

describe('AdaRound and GPTQ on a depthwise 3×3 channel (all 2⁹ roundings enumerated)', () => {
  const seeds = Array.from({ length: 12 }, (_, i) => i + 1);
  const rows = seeds.map((seed) => {
    const p = problem(seed, 1, 9, 200, 3);
    const rtn = codesError(p, nearestCodes(p));
    const best = bruteForce(p);
    const ada = codesError(p, adaround(p, { iters: 2000 }));
    const gq = codesError(p, gptq(p));
    return { seed, rtn, best, ada, gq };
  });

  it('the optimum beats round-to-nearest, so the cases are not trivial', () => {
    expect(rows.filter((r) => r.best < 0.9 * r.rtn).length).toBeGreaterThanOrEqual(3);
  });

  it('AdaRound is never worse than round-to-nearest and close to the optimum', () => {
    for (const r of rows) {
      expect(r.ada, `seed ${r.seed}`).toBeLessThanOrEqual(r.rtn * (1 + 1e-9));
      expect(r.ada, `seed ${r.seed}`).toBeLessThanOrEqual(r.best * 1.25);
    }
    const mean = rows.reduce((s, r) => s + r.ada / r.best, 0) / rows.length;
    expect(mean).toBeLessThan(1.08);
  });

  it('GPTQ beats round-to-nearest on average and stays near the optimum', () => {
    const mean = rows.reduce((s, r) => s + r.gq / r.rtn, 0) / rows.length;
    expect(mean).toBeLessThan(0.9);
    for (const r of rows) expect(r.gq, `seed ${r.seed}`).toBeLessThanOrEqual(r.best * 2);
  });
});

/**
 * GPTQ written the slow, obvious way (OBQ with explicit inverses): quantize column i,
 * then move the rest of the row by −err·H_F⁻¹[:, i]/H_F⁻¹[i, i], where H_F is the Hessian
 * restricted to the columns not yet quantized and inverted afresh at every step.
 */
function referenceGptq(p: LayerProblem): Int32Array {
  const K = p.cols;
  const h = dampedHessian(p.gram, 0, K, 0.01);
  const codes = new Int32Array(p.w.length);
  for (let r = 0; r < p.rows; r++) {
    const w = Array.from(p.w.subarray(r * K, (r + 1) * K));
    const s = Math.fround(p.scale[r]);
    for (let i = 0; i < K; i++) {
      const free = Array.from({ length: K - i }, (_, k) => i + k);
      const n = free.length;
      const sub = new Float64Array(n * n);
      for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) sub[a * n + b] = h[free[a] * K + free[b]];
      const inv = spdInverse(sub, n);
      const q = Math.min(p.qmax, Math.max(p.qmin, roundHalfToEven(Math.fround(Math.fround(w[i]) / s))));
      codes[r * K + i] = q;
      const err = w[i] - Math.fround(q * s);
      for (let a = 1; a < n; a++) w[free[a]] -= (err * inv[a * n]) / inv[0];
    }
  }
  return codes;
}

describe('GPTQ', () => {
  it('equals the explicit-inverse reference on a small dense layer', () => {
    for (const seed of [3, 4, 5]) {
      const p = problem(seed, 6, 12, 300, 4);
      expect(Array.from(gptq(p)), `seed ${seed}`).toEqual(Array.from(referenceGptq(p)));
    }
  });

  it('lowers the reconstruction error of a dense layer below round-to-nearest', () => {
    const p = problem(9, 16, 32, 500, 3);
    expect(codesError(p, gptq(p))).toBeLessThan(0.8 * codesError(p, nearestCodes(p)));
  });
});

describe('AdaRound on a dense layer', () => {
  it('lowers the reconstruction error below round-to-nearest and flips some roundings', () => {
    const p = problem(11, 16, 32, 500, 3);
    const codes = adaround(p, { iters: 1000 });
    const rtn = nearestCodes(p);
    expect(codesError(p, codes)).toBeLessThan(0.8 * codesError(p, rtn));
    const flips = codes.filter((c, i) => c !== rtn[i]).length;
    expect(flips).toBeGreaterThan(0);
  });
});

describe('targets from FP32 with inputs from the quantized prefix', () => {
  // X (FP32 inputs) and X̃ = X + noise (the quantized prefix's inputs), K×P
  const K = 9,
    P = 400,
    rows = 3;
  const rand = mulberry32(21);
  const x = new Float64Array(K * P),
    xq = new Float64Array(K * P);
  for (let i = 0; i < x.length; i++) {
    x[i] = gauss(rand) + 0.2;
    xq[i] = x[i] + 0.3 * gauss(rand);
  }
  const prod = (a: Float64Array, b: Float64Array) => {
    const out = new Float64Array(K * K);
    for (let i = 0; i < K; i++)
      for (let j = 0; j < K; j++) {
        let s = 0;
        for (let p = 0; p < P; p++) s += a[i * P + p] * b[j * P + p];
        out[i * K + j] = s;
      }
    return out;
  };
  const base = problem(5, rows, K, 10, 3);
  const p: LayerProblem = { ...base, gram: prod(xq, xq), positions: P };
  p.target = targetWeights(p, prod(x, xq), 1e-12);
  /** ‖WX − W̃X̃‖² computed directly from the inputs */
  const direct = (codes: Int32Array) => {
    let s = 0;
    for (let r = 0; r < rows; r++)
      for (let q = 0; q < P; q++) {
        let y = 0;
        for (let k = 0; k < K; k++)
          y += p.w[r * K + k] * x[k * P + q] - Math.fround(codes[r * K + k] * Math.fround(p.scale[r])) * xq[k * P + q];
        s += y * y;
      }
    return s;
  };

  it('the error of any rounding differs from ‖WX − W̃X̃‖² by the same constant', () => {
    const a = nearestCodes(p);
    const b = Int32Array.from(a, (c, i) => (i % 2 ? c : Math.max(p.qmin, c - 1)));
    const ka = direct(a) - codesError(p, a);
    const kb = direct(b) - codesError(p, b);
    expect(Math.abs(ka - kb)).toBeLessThan(1e-6 * direct(a));
    expect(ka).toBeGreaterThan(0); // the part no W̃ can remove
  });

  it('AdaRound and GPTQ lower ‖WX − W̃X̃‖² below round-to-nearest', () => {
    const rtn = direct(nearestCodes(p));
    expect(direct(adaround(p, { iters: 1000 }))).toBeLessThan(rtn);
    expect(direct(gptq(p))).toBeLessThan(rtn);
  });
});

describe('targetWeights', () => {
  it('returns W itself when the quantized prefix changes nothing, whatever the damping', () => {
    const p = problem(8, 4, 9, 50, 4);
    const t = targetWeights(p, p.gram, 0.5);
    for (let i = 0; i < t.length; i++) expect(t[i]).toBeCloseTo(p.w[i], 12);
  });
});

describe('polishCodes', () => {
  /** Loss of `codes` with weight i moved to the other end of its floor/ceil interval. */
  function moved(p: LayerProblem, codes: Int32Array, i: number): number | undefined {
    const r = Math.floor(i / p.cols);
    const lo = Math.floor(Math.fround(Math.fround(p.w[i]) / Math.fround(p.scale[r]))) + p.zeroPoint[r];
    const [a, b] = [lo, lo + 1].map((q) => Math.min(p.qmax, Math.max(p.qmin, q)));
    const alt = codes[i] === a ? b : a;
    if (alt === codes[i]) return undefined;
    const c = Int32Array.from(codes);
    c[i] = alt;
    return codesError(p, c);
  }

  it('never raises the loss and ends where no single move to the other end lowers it', () => {
    for (const seed of [21, 22, 23]) {
      const p = problem(seed, 4, 16, 300, 3);
      const s = Array.from(p.scale, (v) => Math.fround(v));
      // starts: round-to-nearest, and every weight rounded down (far from any optimum)
      const down = Int32Array.from(p.w, (v, i) =>
        Math.max(p.qmin, Math.floor(Math.fround(Math.fround(v) / s[Math.floor(i / p.cols)]))),
      );
      for (const start of [nearestCodes(p), down]) {
        const before = codesError(p, start);
        const codes = Int32Array.from(start);
        const n = polishCodes(p, codes, 100);
        const after = codesError(p, codes);
        expect(after, `seed ${seed}`).toBeLessThanOrEqual(before);
        if (codes.some((c, i) => c !== start[i])) expect(n).toBeGreaterThan(0);
        for (let i = 0; i < codes.length; i++) {
          const e = moved(p, codes, i);
          if (e !== undefined) expect(e, `seed ${seed} weight ${i}`).toBeGreaterThanOrEqual(after * (1 - 1e-9));
        }
      }
      // from all-down it has real work to do
      const codes = Int32Array.from(down);
      expect(polishCodes(p, codes, 100)).toBeGreaterThan(0);
      expect(codesError(p, codes)).toBeLessThan(0.5 * codesError(p, down));
    }
  });

  it('keeps every code at one end of its interval and on the grid', () => {
    const p = problem(24, 6, 12, 200, 3);
    const codes = adaround(p, { iters: 200 });
    for (let i = 0; i < codes.length; i++) {
      const s = Math.fround(p.scale[Math.floor(i / p.cols)]);
      const lo = Math.floor(Math.fround(Math.fround(p.w[i]) / s));
      expect([lo, lo + 1].map((q) => Math.min(p.qmax, Math.max(p.qmin, q)))).toContain(codes[i]);
    }
  });
});

/** A dense, well conditioned SPD matrix AAᵀ + ridge·I with A uniform in [−½, ½). */
function randomSpd(n: number, seed: number, ridge: number): Float64Array {
  const rng = mulberry32(seed);
  const a = Float64Array.from({ length: n * n }, () => rng() - 0.5);
  const h = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = i === j ? ridge : 0;
      for (let k = 0; k < n; k++) s += a[i * n + k] * a[j * n + k];
      h[i * n + j] = s;
    }
  return h;
}

/** n×n product X·Y (X·Yᵀ with transY). */
function matmul(x: Float64Array, y: Float64Array, n: number, transY = false): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += x[i * n + k] * (transY ? y[j * n + k] : y[k * n + j]);
      out[i * n + j] = s;
    }
  return out;
}

describe('linalg (row-major SPD routines)', () => {
  const n = 37;
  const rng = mulberry32(12);
  const h = randomSpd(n, 11, 1);
  const eye = (m: Float64Array) => m.every((v, k) => Math.abs(v - (k % (n + 1) === 0 ? 1 : 0)) < 1e-9);

  it('cholesky: lower triangular L with LLᵀ = H', () => {
    const l = cholesky(Float64Array.from(h), n);
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) expect(l[i * n + j]).toBe(0);
    matmul(l, l, n, true).forEach((v, k) => expect(Math.abs(v - h[k])).toBeLessThan(1e-9));
  });

  it('lowerInverse, the reference spdInverse and choleskySolve invert', () => {
    const l = cholesky(Float64Array.from(h), n);
    expect(eye(matmul(lowerInverse(l, n), l, n))).toBe(true);
    const inv = spdInverse(h, n);
    expect(eye(matmul(inv, h, n))).toBe(true);
    const b = Float64Array.from({ length: n }, () => rng());
    const x = choleskySolve(l, n, Float64Array.from(b));
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += h[i * n + k] * x[k];
      expect(Math.abs(s - b[i])).toBeLessThan(1e-9);
    }
    expect(() => cholesky(new Float64Array([1, 2, 2, 1]), 2)).toThrow(/not positive definite/);
  });
});

describe('inverseUpperFactor', () => {
  it('is the upper factor of H⁻¹ = UᵀU (what GPTQ feeds errors through)', () => {
    const n = 23;
    const h = randomSpd(n, 5, 0.5);
    const u = inverseUpperFactor(h, n);
    const inv = spdInverse(h, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) expect(u[i * n + j]).toBe(0);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += u[k * n + i] * u[k * n + j];
        expect(Math.abs(s - inv[i * n + j])).toBeLessThan(1e-8 * (1 + Math.abs(inv[i * n + j])));
      }
  });
});
