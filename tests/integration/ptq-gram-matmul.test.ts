import { describe, expect, it } from 'vitest';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import { adaround, adaroundWith, jsGramProduct } from '../../src/lib/ptq/adaround.ts';
import { ENGINE_MIN_COLS, gramProduct } from '../../src/lib/ptq/gram-matmul.ts';
import { nearestCodes, type LayerProblem } from '../../src/lib/ptq/problem.ts';
import { mulberry32 } from '../support/onnx-helpers.ts';

/** A random ungrouped layer with a positive semi-definite Gram matrix from random inputs. */
function layer(rows: number, K: number, seed: number): LayerProblem {
  const r = mulberry32(seed);
  const n = 3 * K;
  const x = Float64Array.from({ length: K * n }, () => r() * 2 - 1);
  const gram = new Float64Array(K * K);
  for (let a = 0; a < K; a++)
    for (let b = 0; b < K; b++) {
      let s = 0;
      for (let t = 0; t < n; t++) s += x[a * n + t] * x[b * n + t];
      gram[a * K + b] = s;
    }
  const w = Float64Array.from({ length: rows * K }, () => (r() * 2 - 1) * 0.1);
  return {
    rows,
    cols: K,
    groups: 1,
    w,
    gram,
    positions: n,
    scale: new Float64Array(rows).fill(0.02),
    zeroPoint: new Int32Array(rows),
    qmin: -8,
    qmax: 7,
  };
}

describe('AdaRound product on the engine', () => {
  it('equals the TypeScript product within float32 rounding, including odd row counts', async () => {
    const p = layer(7, ENGINE_MIN_COLS + 3, 1);
    const d = Float64Array.from({ length: p.rows * p.cols }, (_, i) => Math.sin(i));
    const want = new Float64Array(d.length);
    jsGramProduct(p)(d, want);
    const engine = await createNodeWasmEngine(1);
    const { product, release } = await gramProduct(engine, p);
    const got = new Float64Array(d.length);
    await product(d, got);
    await release();
    const scale = Math.max(...want.map(Math.abs));
    for (let i = 0; i < d.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-5 * scale);
  });

  it('gives AdaRound nearly the same rounding as the TypeScript product', async () => {
    const p = layer(8, ENGINE_MIN_COLS, 2);
    const engine = await createNodeWasmEngine(1);
    const { product, release } = await gramProduct(engine, p);
    const a = await adaroundWith(p, { iters: 200 }, product);
    await release();
    const b = adaround(p, { iters: 200 });
    let same = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
    expect(same / a.length).toBeGreaterThan(0.98);
    // and the rounding differs from nearest somewhere: the test would catch a no-op solver
    const rtn = nearestCodes(p);
    expect(a.some((c, i) => c !== rtn[i])).toBe(true);
  });
});
