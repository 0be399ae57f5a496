/**
 * The combined analysis graph, drift detection and the fixes on small graphs built in
 * code, run on the project's engine (onnxruntime-web wasm in Node):
 * - reductions of the combined graph equal errors computed directly from fetched
 *   activations of separately built FP32, fully quantized and one-layer-quantized graphs;
 * - a planted per-channel shift is reported as drift of the planted size, and none
 *   is reported without it (quantized vs FP32, and FP32 vs BN running statistics);
 * - bias correction removes a planted mean shift; more passes reduce the residual.
 */
import { describe, expect, it } from 'vitest';
import { analyzeQuantization } from '../../src/lib/analysis/analyze.ts';
import { applyFixes } from '../../src/lib/corrections/fixes.ts';
import { findLayers, setLayerParams } from '../../src/lib/analysis/layers.ts';
import { errorMetrics, errorSumsOf } from '../../src/lib/analysis/metrics.ts';
import type { PreprocessSpec } from '../../src/lib/data/types.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import { batches } from '../../src/lib/experiment/batches.ts';
import { quantizeActivations, quantizeWeights, type WeightQuant } from '../../src/lib/experiment/quantize.ts';
import { collectActivationStats } from '../../src/lib/experiment/calibrate.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { addOutputs, insertFakeQuant } from '../../src/lib/onnx/fake-quant.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { type Graph, cloneGraph, makeGraph, makeNode, makeTensor, makeValueInfo } from '../../src/lib/onnx/ir.ts';
import { findQuantPoints, ALL_PLACEMENT } from '../../src/lib/onnx/placement.ts';
import { mulberry32, randn, runGraph, smallCnn, uniform } from '../support/onnx-helpers.ts';

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

async function setup(g: Graph, wBits: number, images: Uint8Array[]) {
  const engine = await createNodeWasmEngine(2);
  const points = findQuantPoints(g, ALL_PLACEMENT);
  const cfg = resolveConfig({
    backend: 'tensorrt',
    wBits,
    aBits: 8,
    wObserver: 'minmax',
    aObserver: 'minmax',
    wGranularity: 'per-tensor',
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
  return {
    engine,
    points,
    cfg,
    weights: quantizeWeights(g, points, cfg),
    acts: quantizeActivations(points, stats, cfg),
  };
}

async function fetchAll(g: Graph, tensors: string[], images: Uint8Array[]) {
  const b = batches(images, SPEC, images.length).next().value!;
  return runGraph(addOutputs(g, tensors), { input: b.tensor }, tensors);
}

describe('combined analysis graph', () => {
  it('per-layer reductions equal errors computed from fetched activations', async () => {
    const g = foldBatchNorm(smallCnn({ seed: 5 })).graph;
    const images = crops(12, 1);
    const s = await setup(g, 4, images);
    const res = await analyzeQuantization({
      engine: s.engine,
      graph: g,
      points: s.points,
      weights: s.weights,
      activations: s.acts,
      spec: SPEC,
      crops: images,
      batchSize: 5,
    });
    const layers = findLayers(g, s.points.weights);
    expect(res.layers.map((l) => l.output)).toEqual(layers.map((l) => l.output));
    const wMap = new Map(s.weights.map((w) => [w.point.initializer, w.values]));
    const aMap = new Map(s.acts.map((a) => [a.point.tensor, a.qparams]));
    const outs = layers.map((l) => l.output);
    const fp = await fetchAll(g, outs, images);
    const full = await fetchAll(insertFakeQuant(g, { weights: wMap, activations: aMap }), outs, images);
    for (const [i, l] of layers.entries()) {
      const row = res.layers[i];
      const acc = errorMetrics(errorSumsOf(fp[l.output].data, full[l.output].data));
      expect(row.accumulated.sqnrDb).toBeCloseTo(acc.sqnrDb, 3);
      expect(row.accumulated.cosine).toBeCloseTo(acc.cosine, 5);
      expect(row.accumulated.mse / acc.mse).toBeCloseTo(1, 4);
      // standalone: only this layer's input activation and weights quantized
      const x = l.node.inputs[0];
      const one = insertFakeQuant(g, {
        weights: new Map([[l.point.initializer, wMap.get(l.point.initializer)!]]),
        activations: aMap.has(x) ? new Map([[x, aMap.get(x)!]]) : new Map(),
      });
      const sa = await fetchAll(one, [l.output], images);
      const want = errorMetrics(errorSumsOf(fp[l.output].data, sa[l.output].data));
      expect(row.standalone.sqnrDb).toBeCloseTo(want.sqnrDb, 3);
      expect(row.standalone.mse / want.mse).toBeCloseTo(1, 4);
      expect(row.accumulated.sqnrDb).toBeLessThanOrEqual(row.standalone.sqnrDb + 1e-6 + (i === 0 ? 0 : 50));
    }
    // first layer: nothing upstream is quantized except its own input, so both modes agree
    expect(res.layers[0].accumulated.sqnrDb).toBeCloseTo(res.layers[0].standalone.sqnrDb, 4);
    expect(res.analysis.logitsSqnrDb.full).toBeCloseTo(res.layers[res.layers.length - 1].accumulated.sqnrDb, 3);
    expect(Number.isFinite(res.analysis.logitsSqnrDb.weightOnly)).toBe(true);
    expect(res.layers[1].depthwise).toBe(true);
    expect(res.layers[0].weightRanges.min).toHaveLength(4);
  });
});

/** input → Conv(3→4, k1, bias) → BN → Relu → GAP → Flatten → Gemm → output */
function convBn(runningMeanOffset: number[]): { g: Graph; sigma: number[] } {
  const rng = mulberry32(11);
  const sigma = [1, 1, 1, 1];
  return {
    sigma,
    g: makeGraph({
      inputs: [makeValueInfo('input', ['N', 3, 8, 8])],
      outputs: [makeValueInfo('output', ['N', 2])],
      initializers: [
        makeTensor('w', [4, 3, 1, 1], randn(rng, 12, 0.5)),
        makeTensor('b', [4], [0, 0, 0, 0]),
        makeTensor('gamma', [4], [1, 1, 1, 1]),
        makeTensor('beta', [4], [0, 0, 0, 0]),
        makeTensor('mean', [4], runningMeanOffset),
        makeTensor('var', [4], [1, 1, 1, 1]),
        makeTensor('wfc', [2, 4], uniform(rng, 8, -1, 1)),
      ],
      nodes: [
        makeNode('Conv', ['input', 'w', 'b'], ['c'], { kernel_shape: [1, 1] }, { name: 'conv' }),
        makeNode('BatchNormalization', ['c', 'gamma', 'beta', 'mean', 'var'], ['bn'], { epsilon: 0 }, { name: 'bn' }),
        makeNode('Relu', ['bn'], ['r'], {}, { name: 'relu' }),
        makeNode('GlobalAveragePool', ['r'], ['gap'], {}, { name: 'gap' }),
        makeNode('Flatten', ['gap'], ['flat'], { axis: 1 }, { name: 'flat' }),
        makeNode('Gemm', ['flat', 'wfc'], ['output'], { transB: 1 }, { name: 'fc' }),
      ],
    }),
  };
}

describe('BN statistic drift', () => {
  const images = crops(16, 2);
  const identity = (g: Graph): WeightQuant[] =>
    findQuantPoints(g, ALL_PLACEMENT).weights.map((point) => ({
      point,
      qparams: { scale: Float32Array.of(1), zeroPoint: Int32Array.of(0), qmin: -128, qmax: 127, axis: -1 },
      values: g.initializers.get(point.initializer)!.data as Float32Array,
    }));

  async function drift(plant: number, runningOffset: number) {
    const engine = await createNodeWasmEngine(2);
    // running stats: first measure the real conv output statistics, then plant an offset
    const probe = convBn([0, 0, 0, 0]).g;
    const c = (await fetchAll(probe, ['c'], images)).c.data;
    const mean = [0, 0, 0, 0];
    const sq = [0, 0, 0, 0];
    const per = 64;
    for (let i = 0; i < c.length; i++) {
      const ch = Math.floor(i / per) % 4;
      mean[ch] += c[i];
      sq[ch] += c[i] * c[i];
    }
    const n = c.length / 4;
    const std = mean.map((m, k) => Math.sqrt(sq[k] / n - (m / n) ** 2));
    const mu = mean.map((m) => m / n);
    const g0 = convBn(mu.map((m, k) => m + runningOffset * std[k])).g;
    const g = cloneGraph(g0);
    g.initializers.set(
      'var',
      makeTensor(
        'var',
        [4],
        std.map((s) => s * s),
      ),
    );
    const points = findQuantPoints(g, ALL_PLACEMENT);
    const weights = identity(g);
    // "quantized" model: FP32 with a planted per-channel bias offset of plant·σ on the conv
    const quantized = insertFakeQuant(g, { weights: new Map(), activations: new Map() });
    const layer = findLayers(g, points.weights)[0];
    setLayerParams(quantized, [{ layer, bias: std.map((s) => plant * s) }]);
    const res = await analyzeQuantization({
      engine,
      graph: g,
      points,
      weights,
      activations: [],
      quantized,
      spec: SPEC,
      crops: images,
      batchSize: 4,
    });
    return res.layers[0];
  }

  it('reports a planted shift of 0.5σ as drift 0.5 with the std unchanged', async () => {
    const row = await drift(0.5, 0);
    expect(row.drift.meanAbsShift).toBeCloseTo(0.5, 3);
    expect(row.drift.stdRatio).toBeCloseTo(1, 4);
    expect(row.drift.channels).toBe(4);
    // FP32 matches the running stats it was given; the quantized side is off by 0.5σ
    expect(row.driftVsRunning!.fp.meanAbsShift).toBeLessThan(1e-3);
    expect(row.driftVsRunning!.q.meanAbsShift).toBeCloseTo(0.5, 3);
  });

  it('reports no drift without a planted shift', async () => {
    const row = await drift(0, 0);
    expect(row.drift.meanAbsShift).toBeLessThan(1e-4);
    expect(row.drift.stdRatio).toBeCloseTo(1, 5);
    expect(row.driftVsRunning!.fp.meanAbsShift).toBeLessThan(1e-3);
  });

  it('detects running statistics that do not match the data (planted 0.3σ)', async () => {
    const row = await drift(0, 0.3);
    expect(row.driftVsRunning!.fp.meanAbsShift).toBeCloseTo(0.3, 3);
    expect(row.driftVsRunning!.fp.stdRatio).toBeCloseTo(1, 4);
    expect(row.drift.meanAbsShift).toBeLessThan(1e-4);
  });
});

describe('fixes', () => {
  it('bias correction removes a planted mean shift; more passes reduce the residual', async () => {
    const g = foldBatchNorm(smallCnn({ seed: 5 })).graph;
    const images = crops(16, 3);
    const s = await setup(g, 8, images);
    // plant: add a constant to every weight of the first conv (shifts its output mean)
    const planted = s.weights.map((w, i) => (i === 0 ? { ...w, values: w.values.map((v) => v + 0.3) } : w));
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
    const { report, graph } = await applyFixes(inp, { biasCorrection: true, bnReestimate: false, passes: 4 });
    const r = report.biasCorrection!.residual;
    expect(r).toHaveLength(5);
    expect(r[0]).toBeGreaterThan(0.1);
    expect(r[1]).toBeLessThan(r[0] / 2);
    expect(r[4]).toBeLessThanOrEqual(r[1]);
    expect(r[4]).toBeLessThan(r[0] / 20);
    // the corrected graph's first-layer output mean matches FP32 per channel
    const out = findLayers(g, s.points.weights)[0].output;
    const fp = (await fetchAll(g, [out], images))[out].data;
    const q = (await fetchAll(graph, [out], images))[out].data;
    const per = fp.length / (16 * 4);
    for (let c = 0; c < 4; c++) {
      let d = 0;
      for (let n = 0; n < 16; n++)
        for (let k = 0; k < per; k++) d += q[(n * 4 + c) * per + k] - fp[(n * 4 + c) * per + k];
      expect(Math.abs(d / (16 * per))).toBeLessThan(1e-3);
    }
  });

  it('BN re-estimation matches per-channel mean and std to FP32', async () => {
    const g = foldBatchNorm(smallCnn({ seed: 5 })).graph;
    const images = crops(16, 4);
    const s = await setup(g, 3, images);
    const pc = resolveConfig({ ...s.cfg, wGranularity: 'per-channel' });
    const weights = quantizeWeights(g, s.points, pc);
    const inp = {
      engine: s.engine,
      graph: g,
      points: s.points,
      weights,
      activations: s.acts,
      crops: images,
      spec: SPEC,
      batchSize: 8,
    };
    const { report } = await applyFixes(inp, { biasCorrection: false, bnReestimate: true, passes: 4 });
    const r = report.bnReestimate!.residual;
    expect(r[0]).toBeGreaterThan(0.05);
    expect(r[4]).toBeLessThan(r[0] / 10);
  });
});
