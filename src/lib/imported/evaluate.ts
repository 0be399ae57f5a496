/**
 * Running an imported quantized model: as it is, and its scheme re-simulated on the parent.
 *
 * As it is: one engine session made from the file's own bytes with onnxruntime's default
 * options (all graph optimizations, its QDQ fusions included), so the numbers are those of
 * onnxruntime running the file: the bytes are never parsed and written back, and no session
 * option is added that onnxruntime's own defaults do not have.
 *
 * Re-simulated: the parent's fake-quant graph with the imported grids and ranges
 * (imported/resimulate.ts), built and evaluated like any simulated run (experiment/quantize,
 * onnx/fake-quant, the pipeline's evaluation model).
 */
import type { ExperimentConfig } from '../config/types.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine, SessionOptions } from '../engine/types.ts';
import { collectActivationStats, DEFAULT_BINS } from '../experiment/calibrate.ts';
import { evaluate, type EvalOutcome } from '../experiment/evaluate.ts';
import {
  type ActivationQuant,
  type WeightQuant,
  quantizeActivations,
  quantizeWeights,
} from '../experiment/quantize.ts';
import { evaluationModel } from '../experiment/evaluate.ts';
import { insertFakeQuant } from '../onnx/fake-quant.ts';
import type { Graph } from '../onnx/ir.ts';
import { calibrationNeeds } from '../quant/observers.ts';
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

/** One session over the set, released afterwards. */
async function evaluateBytes(
  engine: Engine,
  bytes: Uint8Array,
  options: SessionOptions | undefined,
  set: EvalSet,
): Promise<EvalOutcome> {
  const session = await engine.createSession(bytes, options);
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

/** The quantized file evaluated as it is (see module header): no session option added. Throws the engine's QpError. */
export function evaluateAsIs(engine: Engine, bytes: Uint8Array, set: EvalSet): Promise<EvalOutcome> {
  return evaluateBytes(engine, bytes, undefined, set);
}

/** Calibration statistics of the scheme's points on the parent, for observers other than 'imported'. */
export async function schemeStats(
  engine: Engine,
  scheme: ImportedScheme,
  configs: readonly ExperimentConfig[],
  calibCrops: Uint8Array[],
  spec: PreprocessSpec,
  signal?: AbortSignal,
): Promise<Map<string, ActivationStats>> {
  const needs = calibrationNeeds(configs.map((c) => c.aObserver));
  if (configs.every((c) => c.aObserver === 'imported')) return new Map();
  return collectActivationStats(
    engine,
    scheme.graph,
    scheme.points.activations.map((p) => p.tensor),
    calibCrops,
    spec,
    { batchSize: 32, histBatchSize: 8, bins: DEFAULT_BINS, ...needs, signal },
  );
}

export interface Resimulated {
  weights: WeightQuant[];
  activations: ActivationQuant[];
  /** the fake-quant graph on the parent */
  graph: Graph;
}

/** The scheme under `cfg` as a fake-quant graph on the parent (stats: see schemeStats). */
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

/** Evaluates a fake-quant graph as the pipeline does (bit-exact Q/DQ form on the CPU engines). */
export async function evaluateSimulated(engine: Engine, fq: Graph, set: EvalSet): Promise<EvalOutcome> {
  const m = evaluationModel(engine, fq, {});
  return evaluateBytes(engine, m.bytes, m.options, set);
}
