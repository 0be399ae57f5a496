/**
 * Edge cases of the fixes (analysis/fixes.ts) on small graphs built in code, run on the
 * wasm engine:
 * - the BN re-estimation clamp binds: a channel whose quantized std is 10× the FP32 one
 *   would get a = 0.1, and is held at 1/maxScale;
 * - an all-zero channel (weights and bias zero in FP32): both fixes leave it zero and
 *   every corrected weight and bias finite;
 * - bias correction meeting a MatMul classifier (no bias input to correct): the conv
 *   layers are corrected, the MatMul keeps its fake-quantized weights, nothing throws;
 * - BN re-estimation folds y' = a·y + c as W' = a·W and b' = a·b + c: a first conv given
 *   W/8 as its weights comes back as exactly W and b, after one pass and after two passes
 *   whose scale the clamp splits (4, then 2).
 */
import { describe, expect, it } from 'vitest';
import { applyFixes } from '../../src/lib/corrections/fixes.ts';
import type { PreprocessSpec } from '../../src/lib/data/types.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import { collectActivationStats } from '../../src/lib/experiment/calibrate.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { quantizeActivations, quantizeWeights } from '../../src/lib/experiment/quantize.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { type Graph, cloneGraph, makeGraph, makeNode, makeTensor, makeValueInfo } from '../../src/lib/onnx/ir.ts';
import { findQuantPoints, ALL_PLACEMENT } from '../../src/lib/onnx/placement.ts';
import { mulberry32, randn, smallCnn } from '../support/onnx-helpers.ts';

const SPEC: PreprocessSpec = {
  resizeShorter: 8,
  crop: 8,
  interpolation: 'bilinear',
  mean: [0.5, 0.5, 0.5],
  std: [0.25, 0.25, 0.25],
  layout: 'NCHW',
};

function crops(n: number, seed: number): Uint8Array[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => Uint8Array.from({ length: 8 * 8 * 3 }, () => Math.floor(rng() * 256)));
}

async function setup(g: Graph, images: Uint8Array[], granularity: 'per-tensor' | 'per-channel' = 'per-channel') {
  const engine = await createNodeWasmEngine(2);
  const points = findQuantPoints(g, ALL_PLACEMENT);
  const cfg = resolveConfig({
    backend: 'tensorrt',
    wBits: 8,
    aBits: 8,
    wObserver: 'minmax',
    aObserver: 'minmax',
    wGranularity: granularity,
    firstLast8bit: false,
  });
  const stats = await collectActivationStats(
    engine,
    g,
    points.activations.map((p) => p.tensor),
    images,
    SPEC,
    { batchSize: 8, histBatchSize: 8, histogram: false, moments: false, bins: 16 },
  );
  const weights = quantizeWeights(g, points, cfg);
  return { engine, points, weights, acts: quantizeActivations(points, stats, cfg) };
}

const channel = (w: Float32Array, c: number, per: number) => w.subarray(c * per, (c + 1) * per);

function allFinite(g: Graph): boolean {
  for (const t of g.initializers.values()) {
    if (t.data instanceof Float32Array && !t.data.every(Number.isFinite)) return false;
  }
  return true;
}

describe('fix edge cases', () => {
  it('holds a BN re-estimation scale that would leave [1/maxScale, maxScale] at the clamp', async () => {
    const g = foldBatchNorm(smallCnn({ seed: 7 })).graph;
    const images = crops(16, 5);
    const s = await setup(g, images);
    const w0 = s.weights[0];
    expect(w0.point.initializer).toBe(g.nodes.find((n) => n.opType === 'Conv')!.inputs[1]);
    const per = w0.values.length / 4;
    // plant: channel 0 of the first conv ×10 (σ_q = 10 σ_fp, a = 0.1), the others untouched
    const planted = s.weights.map((w, i) =>
      i === 0 ? { ...w, values: w.values.map((v, j) => (j < per ? v * 10 : v)) } : w,
    );
    const inp = {
      engine: s.engine,
      graph: g,
      points: s.points,
      weights: planted,
      activations: s.acts,
      crops: images,
      spec: SPEC,
      batchSize: 8,
    };
    for (const maxScale of [4, 2]) {
      const { graph } = await applyFixes(inp, { biasCorrection: false, bnReestimate: true, passes: 1, maxScale });
      const out = graph.initializers.get(graph.nodes.find((n) => n.opType === 'Conv')!.inputs[1])!.data as Float32Array;
      const planted0 = channel(planted[0].values, 0, per);
      // the corrected weights are a·W_q per channel (per-channel grid: no requantization)
      const ratio = channel(out, 0, per).reduce(
        (m, v, j) => (Math.abs(planted0[j]) > Math.abs(planted0[m]) ? j : m),
        0,
      );
      expect(channel(out, 0, per)[ratio] / planted0[ratio]).toBeCloseTo(1 / maxScale, 5);
      // untouched channels: a stays near 1, well inside the clamp
      for (let c = 1; c < 4; c++) {
        const a = channel(out, c, per)[0] / channel(planted[0].values, c, per)[0];
        expect(a).toBeGreaterThan(0.8);
        expect(a).toBeLessThan(1.25);
      }
    }
  });

  it('folds the BN re-estimation bias with its scale: W/8 comes back as W and b', async () => {
    // No activation quantization, so the first conv sees the same input in both models and
    // its quantized output is (W·x)/8 + b exactly: a = σ_fp/σ_q = 8 and c = μ_fp − 8·μ_q = −7b,
    // so the folded layer is a·W/8 = W with bias a·b + c = b. Folding c without the scale
    // (b + c), or refining c without it in a later pass, gives another bias.
    const g = foldBatchNorm(smallCnn({ seed: 7 })).graph;
    const images = crops(16, 5);
    const s = await setup(g, images);
    const conv = g.nodes.find((n) => n.opType === 'Conv')!;
    const w = g.initializers.get(conv.inputs[1])!.data as Float32Array;
    const b = g.initializers.get(conv.inputs[2])!.data as Float32Array;
    expect(s.weights[0].point.initializer).toBe(conv.inputs[1]);
    expect(Math.min(...Array.from(b, Math.abs))).toBeGreaterThan(0.01);
    const planted = s.weights.map((q, i) => (i === 0 ? { ...q, values: w.map((v) => v / 8) } : q));
    const inp = {
      engine: s.engine,
      graph: g,
      points: s.points,
      weights: planted,
      activations: [],
      crops: images,
      spec: SPEC,
      batchSize: 8,
    };
    for (const [passes, maxScale] of [
      [1, 16],
      [2, 4],
    ]) {
      const { graph, report } = await applyFixes(inp, { biasCorrection: false, bnReestimate: true, passes, maxScale });
      const fixed = graph.nodes.find((n) => n.opType === 'Conv')!;
      const fw = graph.initializers.get(fixed.inputs[1])!.data as Float32Array;
      const fb = graph.initializers.get(fixed.inputs[2])!.data as Float32Array;
      for (let k = 0; k < w.length; k++) expect(fw[k], `passes ${passes}, w[${k}]`).toBeCloseTo(w[k], 4);
      for (let c = 0; c < b.length; c++) expect(fb[c], `passes ${passes}, b[${c}]`).toBeCloseTo(b[c], 4);
      expect(report.bnReestimate!.residual).toHaveLength(passes + 1);
    }
  });

  it('leaves an all-zero channel zero and every corrected parameter finite', async () => {
    const g = cloneGraph(foldBatchNorm(smallCnn({ seed: 8 })).graph);
    const conv = g.nodes.find((n) => n.opType === 'Conv')!;
    const w = g.initializers.get(conv.inputs[1])!.data as Float32Array;
    const b = g.initializers.get(conv.inputs[2])!.data as Float32Array;
    const per = w.length / 4;
    w.fill(0, 2 * per, 3 * per); // channel 2: weights and bias zero, so its output is 0 everywhere
    b[2] = 0;
    const images = crops(16, 6);
    const s = await setup(g, images);
    const inp = {
      engine: s.engine,
      graph: g,
      points: s.points,
      weights: s.weights,
      activations: s.acts,
      crops: images,
      spec: SPEC,
      batchSize: 8,
    };
    const { graph, report } = await applyFixes(inp, { biasCorrection: true, bnReestimate: true, passes: 2 });
    expect(allFinite(graph)).toBe(true);
    for (const r of [...report.bnReestimate!.residual, ...report.biasCorrection!.residual])
      expect(Number.isFinite(r)).toBe(true);
    const fixedConv = graph.nodes.find((n) => n.opType === 'Conv')!;
    const fw = graph.initializers.get(fixedConv.inputs[1])!.data as Float32Array;
    const fb = graph.initializers.get(fixedConv.inputs[2])!.data as Float32Array;
    expect(channel(fw, 2, per).every((v) => v === 0)).toBe(true);
    expect(Math.abs(fb[2])).toBeLessThan(1e-6);
  });

  it('corrects the convs of a model whose classifier is a MatMul and keeps the MatMul weights', async () => {
    const rng = mulberry32(9);
    const g = makeGraph({
      opset: 13,
      inputs: [makeValueInfo('input', ['N', 3, 8, 8])],
      outputs: [makeValueInfo('output', ['N', 5])],
      initializers: [
        makeTensor('w1', [4, 3, 3, 3], randn(rng, 108, 0.3)),
        makeTensor('b1', [4], randn(rng, 4, 0.1)),
        makeTensor('wfc', [4, 5], randn(rng, 20, 0.5)),
        makeTensor('bfc', [5], randn(rng, 5, 0.1)),
      ],
      nodes: [
        makeNode(
          'Conv',
          ['input', 'w1', 'b1'],
          ['c1'],
          { kernel_shape: [3, 3], pads: [1, 1, 1, 1] },
          { name: 'conv1' },
        ),
        makeNode('Relu', ['c1'], ['r1'], {}, { name: 'relu1' }),
        makeNode('GlobalAveragePool', ['r1'], ['gap'], {}, { name: 'gap' }),
        makeNode('Flatten', ['gap'], ['flat'], { axis: 1 }, { name: 'flatten' }),
        makeNode('MatMul', ['flat', 'wfc'], ['mm'], {}, { name: 'fc' }),
        makeNode('Add', ['mm', 'bfc'], ['output'], {}, { name: 'fc_bias' }),
      ],
    });
    const images = crops(16, 7);
    const s = await setup(g, images, 'per-tensor');
    expect(s.weights.map((w) => w.point.initializer).sort()).toEqual(['w1', 'wfc']);
    // plant a mean shift on the conv so the correction has something to do
    const planted = s.weights.map((w) =>
      w.point.initializer === 'w1' ? { ...w, values: w.values.map((v) => v + 0.2) } : w,
    );
    const inp = {
      engine: s.engine,
      graph: g,
      points: s.points,
      weights: planted,
      activations: s.acts,
      crops: images,
      spec: SPEC,
      batchSize: 8,
    };
    const { graph, report } = await applyFixes(inp, { biasCorrection: true, bnReestimate: false, passes: 2 });
    expect(report.biasCorrection!.layers).toBe(1); // the conv only: a MatMul has no bias input
    const r = report.biasCorrection!.residual;
    expect(r[2]).toBeLessThan(r[0] / 5);
    const wfc = s.weights.find((w) => w.point.initializer === 'wfc')!;
    expect(Array.from(graph.initializers.get('wfc')!.data as Float32Array)).toEqual(Array.from(wfc.values));
    expect(Array.from(graph.initializers.get('bfc')!.data as Float32Array)).toEqual(
      Array.from(g.initializers.get('bfc')!.data as Float32Array),
    );
    expect(allFinite(graph)).toBe(true);
  });
});
