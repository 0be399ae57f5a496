/**
 * Running an imported quantized model: as it is, and its scheme re-simulated on the parent.
 *
 * As it is: one engine session made from the file's own bytes with onnxruntime's default
 * options (all graph optimizations, its QDQ fusions included), so the numbers are those of
 * onnxruntime running the file: the bytes are never parsed and written back, and no session
 * option is added that onnxruntime's own defaults do not have.
 *
 * Re-simulated: the parent's fake-quant graph with the imported grids and ranges
 * (imported/resimulate.ts), built like any simulated run (experiment/quantize,
 * onnx/fake-quant); runs of it go through the pipeline's `scheme` hook.
 */
import type { ExperimentConfig } from '../config/types.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine } from '../engine/types.ts';
import { evaluate, type EvalOutcome } from '../experiment/evaluate.ts';
import {
  type ActivationQuant,
  type WeightQuant,
  quantizeActivations,
  quantizeWeights,
} from '../experiment/quantize.ts';
import { insertFakeQuant } from '../onnx/fake-quant.ts';
import type { Graph } from '../onnx/ir.ts';
import type { ActivationStats } from '../quant/types.ts';
import type { ImportedScheme } from './resimulate.ts';

export interface EvalSet {
  crops: Uint8Array[];
  labels: number[];
  spec: PreprocessSpec;
  batchSize?: number;
  signal?: AbortSignal;
  onBatch?: (done: number, total: number) => void;
}

/** The quantized file evaluated as it is (see module header): no session option added. Throws the engine's QpError. */
export async function evaluateAsIs(engine: Engine, bytes: Uint8Array, set: EvalSet): Promise<EvalOutcome> {
  const session = await engine.createSession(bytes);
  try {
    return await evaluate(session, set.crops, set.labels, set.spec, {
      batchSize: set.batchSize ?? 32,
      signal: set.signal,
      onBatch: set.onBatch,
    });
  } finally {
    await session.release();
  }
}

export interface Resimulated {
  weights: WeightQuant[];
  activations: ActivationQuant[];
  /** the fake-quant graph on the parent */
  graph: Graph;
}

/**
 * The scheme under `cfg` as a fake-quant graph on the parent, for the per-layer comparison
 * (imported/compare.ts). `stats`: calibration statistics of the scheme's points, needed for
 * observers other than 'imported'. A run of the scheme goes through the pipeline instead
 * (its `scheme` hook), which builds the same graph.
 */
export function resimulatedGraph(
  scheme: ImportedScheme,
  cfg: ExperimentConfig,
  stats: Map<string, ActivationStats> = new Map(),
): Resimulated {
  const weights = quantizeWeights(scheme.graph, scheme.points, cfg, undefined, scheme.fixed);
  const activations = quantizeActivations(scheme.points, stats, cfg, scheme.fixed);
  const graph = insertFakeQuant(scheme.graph, {
    weights: new Map(weights.map((w) => [w.point.initializer, w.values])),
    activations: new Map(activations.map((a) => [a.point.tensor, a.qparams])),
  });
  return { weights, activations, graph };
}
