// foldFakeQuantScales: the folded fake-quant graph computes (almost) what the exact one
// does, with fewer element-wise nodes; rare last-bit tie flips are measured, not hidden.
import { describe, expect, it } from 'vitest';
import type { PreprocessSpec } from '../../src/lib/data/types.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import { batches } from '../../src/lib/experiment/batches.ts';
import { collectActivationStats } from '../../src/lib/experiment/calibrate.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { quantizeActivations, quantizeWeights } from '../../src/lib/experiment/quantize.ts';
import { insertFakeQuant } from '../../src/lib/onnx/fake-quant.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { foldFakeQuantScales } from '../../src/lib/onnx/fold-fq-scales.ts';
import { findQuantPoints, ALL_PLACEMENT } from '../../src/lib/onnx/placement.ts';
import { mulberry32, runGraph, smallCnn } from '../support/onnx-helpers.ts';

const SPEC: PreprocessSpec = {
  resizeShorter: 8,
  crop: 8,
  interpolation: 'bilinear',
  mean: [0.5, 0.5, 0.5],
  std: [0.25, 0.25, 0.25],
  layout: 'NCHW',
};

describe.each([false, true])('foldFakeQuantScales (ReLU6 as Clip: %s)', (relu6Clip) => {
  it('folds Div into producing Convs and Mul into consuming Convs; outputs match the exact graph', async () => {
    const g = foldBatchNorm(smallCnn({ seed: 5, relu6Clip, ...(relu6Clip ? { opset: 9 } : {}) })).graph;
    const rng = mulberry32(2);
    const images = Array.from({ length: 16 }, () =>
      Uint8Array.from({ length: 8 * 8 * 3 }, () => Math.floor(rng() * 256)),
    );
    const points = findQuantPoints(g, ALL_PLACEMENT);
    const engine = await createNodeWasmEngine(2);
    const stats = await collectActivationStats(
      engine,
      g,
      points.activations.map((p) => p.tensor),
      images,
      SPEC,
      { batchSize: 16, histBatchSize: 16, histogram: false, moments: false, bins: 16 },
    );
    const cfg = resolveConfig({ backend: 'tensorrt', wObserver: 'minmax', aObserver: 'minmax' });
    const exact = insertFakeQuant(g, {
      weights: new Map(quantizeWeights(g, points, cfg).map((w) => [w.point.initializer, w.values])),
      activations: new Map(quantizeActivations(points, stats, cfg).map((a) => [a.point.tensor, a.qparams])),
    });
    const { graph: folded, report } = foldFakeQuantScales(exact);
    expect(report.quantizers).toBeGreaterThan(0);
    expect(report.producerFolds).toBeGreaterThan(0);
    expect(report.consumerFolds).toBeGreaterThan(0);
    const count = (gr: typeof exact, op: string) => gr.nodes.filter((n) => n.opType === op).length;
    expect(count(folded, 'Div')).toBe(count(exact, 'Div') - report.producerFolds);
    expect(count(folded, 'Mul')).toBe(count(exact, 'Mul') - report.consumerFolds);
    expect(count(folded, 'Round')).toBe(count(exact, 'Round'));
    // the input graph is untouched
    expect(exact.nodes.filter((n) => n.opType === 'Div')).toHaveLength(report.quantizers);

    const b = batches(images, SPEC, images.length).next().value!;
    const out = exact.outputs[0].name;
    const a = (await runGraph(exact, { input: b.tensor }, [out]))[out].data;
    const f = (await runGraph(folded, { input: b.tensor }, [out]))[out].data;
    let maxAbs = 0;
    let scale = 0;
    for (let i = 0; i < a.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(a[i] - f[i]));
      scale = Math.max(scale, Math.abs(a[i]));
    }
    // at most a few single-step flips of some quantized activation
    expect(maxAbs / scale).toBeLessThan(0.05);
    let same = 0;
    for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - f[i]) <= 1e-5 * scale) same++;
    expect(same / a.length).toBeGreaterThan(0.9);
  });
});
