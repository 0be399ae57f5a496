import { describe, expect, it } from 'vitest';
import { buildMobileNetV2 } from '../../src/lib/models/builders.ts';
import { parseModel } from '../../src/lib/onnx/model.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { findQuantPoints } from '../../src/lib/onnx/placement.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { quantizeWeights } from '../../src/lib/experiment/quantize.ts';
import { errorMetrics, errorSumsOf, vanishedChannels } from '../../src/lib/analysis/metrics.ts';
import { prepareWeightModel, weightView } from '../../src/lib/analysis/weight-view.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import type { Graph } from '../../src/lib/onnx/ir.ts';
import { smallCnn } from '../support/onnx-helpers.ts';

const graph = parseModel(buildMobileNetV2());
const model = prepareWeightModel(graph, true);
const cfg = (o: Partial<ExperimentConfig> = {}): ExperimentConfig => ({
  ...resolveConfig({ model: 'mobilenet-v2', backend: 'tensorrt' }),
  ...o,
});

/** The instant view and the pipeline's quantizer agree on every layer of `graph`. */
function expectSameAsPipeline(graph: Graph, c: ExperimentConfig) {
  const v = weightView(prepareWeightModel(graph, true), c);
  const g = foldBatchNorm(graph).graph;
  const wq = quantizeWeights(g, findQuantPoints(g, c.placement), c);
  expect(v.layers).toHaveLength(wq.length);
  wq.forEach((w, i) => {
    const fp = g.initializers.get(w.point.initializer)!.data as Float32Array;
    expect(v.layers[i].sqnrDb).toBeCloseTo(errorMetrics(errorSumsOf(fp, w.values)).sqnrDb, 9);
    expect(v.layers[i].bits).toBe(c.wBits);
    expect(v.layers[i].vanished).toBe(
      vanishedChannels(fp, w.values, g.initializers.get(w.point.initializer)!.dims, w.point.axis),
    );
  });
}

describe('weightView', () => {
  it.each([
    ['per-channel min/max', { wBits: 4 }],
    ['per-tensor min/max', { wBits: 4, wGranularity: 'per-tensor' as const }],
  ])('gives the same weight SQNR and vanished channels as the pipeline quantizer (%s)', (_, o) =>
    expectSameAsPipeline(graph, cfg(o)),
  );

  // the MSE search is costly on 3.5 M weights: the small CNN (conv, depthwise, Gemm) checks the same path
  it.each([
    ['per-channel MSE', { wBits: 4, wObserver: 'mse' as const }],
    ['per-tensor MSE', { wBits: 3, wObserver: 'mse' as const, wGranularity: 'per-tensor' as const }],
  ])('gives the same weight SQNR as the pipeline quantizer on a small CNN (%s)', (_, o) =>
    expectSameAsPipeline(smallCnn({ seed: 4 }), cfg(o)),
  );

  it('loses SQNR and size with fewer bits, and names layers readably', () => {
    const v8 = weightView(model, cfg({ wBits: 8 }));
    const v4 = weightView(model, cfg({ wBits: 4 }));
    for (let i = 0; i < v8.layers.length; i++) expect(v4.layers[i].sqnrDb).toBeLessThan(v8.layers[i].sqnrDb);
    expect(v8.fp32Bytes).toBe(v4.fp32Bytes);
    // 3.5 M parameters: ~14 MB at FP32, about a quarter at 8 bits, an eighth at 4
    expect(v8.quantBytes / v8.fp32Bytes).toBeGreaterThan(0.24);
    expect(v8.quantBytes / v8.fp32Bytes).toBeLessThan(0.3);
    expect(v4.quantBytes).toBeLessThan(v8.quantBytes * 0.6);
    expect(v8.layers[2].label).toBe('block 1 · project 1×1');
  });

  it('per-tensor scales make channels vanish that per-channel scales keep', () => {
    const pt = weightView(model, cfg({ wBits: 4, wGranularity: 'per-tensor' }));
    const pc = weightView(model, cfg({ wBits: 4, wGranularity: 'per-channel' }));
    const sum = (v: typeof pt) => v.layers.reduce((s, l) => s + l.vanished, 0);
    expect(sum(pc)).toBeLessThanOrEqual(sum(pt));
    expect(pt.layers[0].channelMin).toHaveLength(32);
  });

  it('honours first/last at 8 bits and per-layer overrides', () => {
    const v = weightView(model, cfg({ wBits: 4, firstLast8bit: true }));
    expect(v.layers[0].bits).toBe(8);
    expect(v.layers.at(-1)!.bits).toBe(8);
    expect(v.layers[1].bits).toBe(4);
    const name = v.layers[5].name;
    const o = weightView(model, { ...cfg({ wBits: 4 }), layerBits: { [name]: 6 } } as ExperimentConfig);
    expect(o.layers[5].bits).toBe(6);
    expect(o.layers[4].bits).toBe(4);
  });

  it('returns the selected layer histogram with its grid, and refuses an unknown layer', () => {
    const name = model.layers[3].layer.name;
    const v = weightView(model, cfg({ wBits: 3, wGranularity: 'per-tensor' }), { layer: name, bins: 64 });
    const h = v.selected!.histogram;
    expect(v.selected!.name).toBe(name);
    expect(h.counts).toHaveLength(64);
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(model.layers[3].data.length);
    expect(h.gridPoints!.length).toBeLessThanOrEqual(8);
    expect(() => weightView(model, cfg(), { layer: 'nope' })).toThrow(/no quantized layer named "nope"/);
  });
});
