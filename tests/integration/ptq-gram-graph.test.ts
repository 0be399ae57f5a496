import { describe, expect, it } from 'vitest';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { addOutputs } from '../../src/lib/onnx/fake-quant.ts';
import { findQuantPoints, ALL_PLACEMENT } from '../../src/lib/onnx/placement.ts';
import {
  buildCrossGramGraph,
  buildGramGraph,
  gramLayout,
  planGramChunks,
  positionsOf,
  QUANT_PREFIX,
  type GramLayout,
} from '../../src/lib/ptq/gram-graph.ts';
import { insertFakeQuant } from '../../src/lib/onnx/fake-quant.ts';
import { mulberry32, randn, runGraph, smallCnn } from '../support/onnx-helpers.ts';

/** im2col in JS: G[g][a][b] = Σ over images and output pixels of col_a·col_b. */
function referenceGram(
  x: Float32Array,
  dims: number[],
  l: GramLayout,
  kh: number,
  kw: number,
  stride: number,
  pad: number,
  x2 = x,
): { gram: Float64Array; positions: number } {
  const [N, C, H, W] = dims;
  const Ho = Math.floor((H + 2 * pad - kh) / stride) + 1;
  const Wo = Math.floor((W + 2 * pad - kw) / stride) + 1;
  const cpg = C / l.groups;
  const K = l.cols;
  const gram = new Float64Array(l.groups * K * K);
  const col = new Float64Array(K);
  const col2 = new Float64Array(K);
  for (let g = 0; g < l.groups; g++)
    for (let n = 0; n < N; n++)
      for (let oy = 0; oy < Ho; oy++)
        for (let ox = 0; ox < Wo; ox++) {
          for (let c = 0; c < cpg; c++)
            for (let ky = 0; ky < kh; ky++)
              for (let kx = 0; kx < kw; kx++) {
                const y = oy * stride - pad + ky,
                  xx = ox * stride - pad + kx;
                const inside = y >= 0 && y < H && xx >= 0 && xx < W;
                col[(c * kh + ky) * kw + kx] = inside ? x[((n * C + g * cpg + c) * H + y) * W + xx] : 0;
                col2[(c * kh + ky) * kw + kx] = inside ? x2[((n * C + g * cpg + c) * H + y) * W + xx] : 0;
              }
          for (let a = 0; a < K; a++) for (let b = 0; b < K; b++) gram[(g * K + a) * K + b] += col[a] * col2[b];
        }
  return { gram, positions: N * Ho * Wo };
}

describe('buildGramGraph', () => {
  it('matches a JS im2col for a dense 3×3 conv, a depthwise conv and a Gemm', async () => {
    const g = foldBatchNorm(smallCnn({ seed: 4 })).graph;
    const points = findQuantPoints(g, ALL_PLACEMENT);
    const layouts = points.weights.map((p) => gramLayout(g, p)).filter((l): l is GramLayout => typeof l !== 'string');
    expect(layouts.map((l) => [l.groups, l.cols])).toEqual([
      [1, 27],
      [4, 9],
      [1, 4],
    ]);
    const { graph, outputs } = buildGramGraph(
      addOutputs(
        g,
        layouts.map((l) => l.input),
      ),
      layouts,
    );
    const N = 2;
    const x = randn(mulberry32(7), N * 3 * 64, 1, 0.2);
    const out = await runGraph(graph, { input: { data: x, dims: [N, 3, 8, 8] } }, [
      ...layouts.map((l) => l.input),
      ...outputs.flatMap((o) => [o.gram, o.shape]),
    ]);
    for (const o of outputs) {
      const l = o.layout;
      const inp = out[l.input];
      const ref =
        l.point.opType === 'Conv'
          ? referenceGram(inp.data, inp.dims, l, 3, 3, 1, 1)
          : referenceGram(inp.data, [inp.dims[0], inp.dims[1], 1, 1], l, 1, 1, 1, 0);
      expect(out[o.gram].dims, l.point.node).toEqual([l.groups, l.cols, l.cols]);
      expect(positionsOf(o, out[o.shape].data), l.point.node).toBe(ref.positions);
      let scale = 0;
      for (const v of ref.gram) scale = Math.max(scale, Math.abs(v));
      for (let i = 0; i < ref.gram.length; i++)
        expect(Math.abs(out[o.gram].data[i] - ref.gram[i]), `${l.point.node} [${i}]`).toBeLessThan(1e-5 * scale + 1e-6);
    }
  });

  it('runs the FP32 and a quantized model side by side: Gram of the quantized inputs and the FP32×quantized cross term', async () => {
    const g = foldBatchNorm(smallCnn({ seed: 4 })).graph;
    const layouts = findQuantPoints(g, ALL_PLACEMENT)
      .weights.map((p) => gramLayout(g, p))
      .filter((l): l is GramLayout => typeof l !== 'string');
    // the "quantized" model: first conv's weights perturbed, so every later input differs
    const w1 = g.initializers.get(layouts[0].point.initializer)!.data as Float32Array;
    const quant = insertFakeQuant(g, {
      weights: new Map([[layouts[0].point.initializer, w1.map((v, i) => v * (1 + 0.2 * Math.sin(i)))]]),
      activations: new Map(),
    });
    const { graph, outputs } = buildCrossGramGraph(g, quant, layouts);
    const qIn = (l: GramLayout) => (l.input === 'input' ? 'input' : QUANT_PREFIX + l.input);
    const N = 2;
    const x = randn(mulberry32(9), N * 3 * 64, 1, 0.2);
    const fetch = [...layouts.flatMap((l) => [l.input, qIn(l)]), ...outputs.flatMap((o) => [o.gram, o.cross, o.shape])];
    const out = await runGraph(
      addOutputs(
        graph,
        layouts.flatMap((l) => [l.input, qIn(l)]),
      ),
      { input: { data: x, dims: [N, 3, 8, 8] } },
      fetch,
    );
    let differs = 0;
    for (const o of outputs) {
      const l = o.layout;
      const fp = out[l.input],
        q = out[qIn(l)];
      const dims = l.point.opType === 'Conv' ? fp.dims : [fp.dims[0], fp.dims[1], 1, 1];
      const [k, p] = l.point.opType === 'Conv' ? [3, 1] : [1, 0];
      const gq = referenceGram(q.data, dims, l, k, k, 1, p);
      const cross = referenceGram(fp.data, dims, l, k, k, 1, p, q.data);
      for (const [name, ref] of [
        [o.gram, gq.gram],
        [o.cross, cross.gram],
      ] as const) {
        let scale = 0;
        for (const v of ref) scale = Math.max(scale, Math.abs(v));
        for (let i = 0; i < ref.length; i++)
          expect(Math.abs(out[name].data[i] - ref[i]), `${name} [${i}]`).toBeLessThan(1e-5 * scale + 1e-6);
      }
      if (fp.data.some((v, i) => Math.abs(v - q.data[i]) > 1e-3)) differs++;
    }
    expect(differs).toBe(2); // the depthwise conv's and the classifier's inputs differ; the first conv's is the image
  });

  it('splits layers into chunks under a float budget, each layer at least alone', () => {
    const l = (cols: number) => ({ groups: 1, cols }) as GramLayout;
    const chunks = planGramChunks([l(10), l(10), l(20), l(5)], 250);
    expect(chunks.map((c) => c.map((x) => x.cols))).toEqual([[10, 10], [20], [5]]);
  });
});
