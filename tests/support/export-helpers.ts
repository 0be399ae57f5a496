/**
 * Shared set-up for the export tests: a simulated run (the pipeline's onQuantized payload)
 * of the small CNN of onnx-helpers, without data sets and without an engine (the FP32
 * activations that set the ranges come from the TypeScript reference evaluator), so the
 * unit tier can use it too. Not a test file itself.
 */
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import type { FloatTensor } from '../../src/lib/engine/types.ts';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import {
  quantizeWeights,
  includeActivation,
  type ActivationQuant,
  type WeightQuant,
} from '../../src/lib/experiment/quantize.ts';
import type { QuantizedRun } from '../../src/lib/experiment/types.ts';
import { insertFakeQuant } from '../../src/lib/onnx/fake-quant.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import type { Graph } from '../../src/lib/onnx/ir.ts';
import { ALL_PLACEMENT, findQuantPoints } from '../../src/lib/onnx/placement.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import { activationSpec } from '../../src/lib/quant/spec.ts';
import { computeQParams } from '../../src/lib/quant/quantizer.ts';
import { mulberry32, randn, smallCnn } from './onnx-helpers.ts';
import { evalGraph } from './reference-eval.ts';

/** One config per quantizer flavour the QDQ export must reproduce. */
export const QDQ_CASES: [string, Partial<ExperimentConfig>][] = [
  ['TensorRT (narrow signed symmetric)', { backend: 'tensorrt' }],
  ['Academic (asymmetric unsigned, per-channel weights)', { backend: 'academic', placement: ALL_PLACEMENT }],
  ['SNPE (asymmetric per-tensor weights)', { backend: 'snpe' }],
  [
    'power-of-two scales',
    { backend: 'academic', wPowerOfTwo: true, aPowerOfTwo: true, aSign: 'signed', placement: ALL_PLACEMENT },
  ],
  [
    'W4A4 (int4/uint4, opset 21)',
    { backend: 'academic', wBits: 4, aBits: 4, firstLast8bit: false, placement: ALL_PLACEMENT },
  ],
  ['W8A16 (int16 activations, opset 21)', { backend: 'tensorrt', aBits: 16 }],
];

export async function run(
  bytes: Uint8Array,
  feeds: Record<string, FloatTensor>,
  optimization: 'disabled' | 'all' = 'disabled',
) {
  const engine = await createNodeWasmEngine(2);
  const s = await engine.createSession(bytes, { optimization });
  try {
    return (await s.run(feeds))['output'].data;
  } finally {
    await s.release();
  }
}

export const input = (): Record<string, FloatTensor> => ({
  input: { data: randn(mulberry32(7), 4 * 3 * 8 * 8, 1.5), dims: [4, 3, 8, 8] },
});

/** A simulated run of smallCnn under `cfg`, activation ranges from the FP32 tensors of the test input. */
/** 8×8 RGB crops (HWC bytes) for the small CNN */
const CROPS = Array.from({ length: 6 }, (_, k) =>
  Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * 37 + k * 101) % 256),
);

export function simulate(cfg: ExperimentConfig, net: { relu6Clip?: boolean; opset?: number } = {}): QuantizedRun {
  const graph = foldBatchNorm(smallCnn(net)).graph;
  const points = findQuantPoints(graph, ALL_PLACEMENT);
  const weights = quantizeWeights(graph, points, cfg);
  const tensors = points.activations.filter((p) => includeActivation(p, cfg)).map((p) => p.tensor);
  const feeds = input();
  const fp = evalGraph(
    graph,
    { input: { dims: feeds.input.dims, data: Float64Array.from(feeds.input.data) } },
    tensors,
  );
  const out: Record<string, { data: ArrayLike<number> }> = { ...fp, input: feeds.input };
  const activations: ActivationQuant[] = points.activations
    .filter((p) => includeActivation(p, cfg))
    .map((point) => {
      const d = out[point.tensor].data;
      const min = Math.min(...Array.from(d)) * 0.8; // clip a little so saturation is exercised
      const max = Math.max(...Array.from(d)) * 0.8;
      const qparams = computeQParams(
        { min: Float32Array.of(min), max: Float32Array.of(max) },
        activationSpec(cfg, min >= 0),
      );
      return { point, qparams, min, max };
    });
  return quantizedRun(cfg, graph, weights, activations);
}

/** The QuantizedRun of a simulated small-CNN run (evaluation on the fixed 8×8 crops). */
export function quantizedRun(
  cfg: ExperimentConfig,
  graph: Graph,
  weights: WeightQuant[],
  activations: ActivationQuant[],
): QuantizedRun {
  const evaluated = insertFakeQuant(graph, {
    weights: new Map(weights.map((w) => [w.point.initializer, w.values])),
    activations: new Map(activations.map((a) => [a.point.tensor, a.qparams])),
  });
  return {
    config: cfg,
    graph,
    evaluated,
    weights,
    activations,
    evaluation: {
      crops: CROPS,
      labels: CROPS.map((_, i) => i % 5),
      preds: new Int32Array(CROPS.length),
      spec: { ...TORCHVISION_SPEC, crop: 8, resizeShorter: 8 },
    },
  };
}
