/**
 * The graphs a run hands a WebGPU engine, as the pipeline builds them: an engine that reports
 * kind 'webgpu' (so every builder picks its WebGPU form) records each model it is given and
 * runs it on onnxruntime-web's wasm in Node, while the real building blocks run — FP32
 * evaluation, calibration (MinMax with moments, and the single-pass histogram form), the
 * evaluated fake-quant graph (experiment/run.ts evaluationModel) and GPTQ reconstruction
 * (Gram passes with FP32 inputs, and the quantized-prefix passes). bench:webgpu and the e2e
 * placement test then ask onnxruntime in Chromium where it places each node (`placeByKind`).
 * Also the tiny classifier (as a graph) and seeded crops for it.
 */
import { resolveConfig } from '../src/lib/config/resolve.ts';
import type { PreprocessSpec } from '../src/lib/data/types.ts';
import { createNodeWasmEngine } from '../src/lib/engine/node.ts';
import type { Engine } from '../src/lib/engine/types.ts';
import { collectActivationStats, DEFAULT_BINS } from '../src/lib/experiment/calibrate.ts';
import { quantizeActivations, quantizeWeights } from '../src/lib/experiment/quantize.ts';
import { evaluationModel } from '../src/lib/experiment/evaluate.ts';
import { insertFakeQuant } from '../src/lib/onnx/fake-quant.ts';
import type { Graph } from '../src/lib/onnx/ir.ts';
import { parseModel, serializeModel } from '../src/lib/onnx/model.ts';
import { findQuantPoints, ALL_PLACEMENT } from '../src/lib/onnx/placement.ts';
import { collectGrams, reconstructFromQuantizedPrefix } from '../src/lib/ptq/reconstruct.ts';
import type { ActivationStats } from '../src/lib/quant/types.ts';
import type { QuantizedRun } from '../src/lib/experiment/types.ts';
import { buildQdq, toDeployable } from '../src/lib/export/index.ts';
import type { OrtPage } from '../tests/e2e/ort-page.ts';
import { tinyClassifier as tinyClassifierModel } from '../tests/support/tiny-model.ts';

export type GraphKind = 'fp32' | 'fakeQuant' | 'calibration' | 'reconstruction';
export const GRAPH_KINDS: GraphKind[] = ['fp32', 'fakeQuant', 'calibration', 'reconstruction'];

export interface RecordedGraphs {
  /** serialized models by kind, in the order the pipeline created their sessions */
  graphs: Record<GraphKind, Uint8Array[]>;
  /** the evaluated fake-quant model (WebGPU form) */
  fakeQuant: Uint8Array;
  /** the same model in the element-wise form with Round (what WebGPU was given before) */
  elementWise: Uint8Array;
  /** MinMax statistics of the crops (for further fake-quant or export models) */
  stats: Map<string, ActivationStats>;
}

export interface KindPlacement {
  /** graphs placed */
  graphs: number;
  nodes: number;
  /** nodes onnxruntime put on the CPU provider, and their op types */
  cpuNodes: number;
  cpuOps: Record<string, number>;
  /** GPU↔CPU copy nodes it inserted */
  copies: number;
}

/** Where onnxruntime places the nodes of every recorded graph on WebGPU, summed per kind. */
export async function placeByKind(
  page: OrtPage,
  graphs: Record<GraphKind, Uint8Array[]>,
): Promise<Record<GraphKind, KindPlacement>> {
  const out = {} as Record<GraphKind, KindPlacement>;
  for (const kind of GRAPH_KINDS) {
    const k: KindPlacement = { graphs: 0, nodes: 0, cpuNodes: 0, cpuOps: {}, copies: 0 };
    for (const m of graphs[kind]) {
      const p = await page.placement(m);
      k.graphs++;
      k.nodes += p.total;
      k.cpuNodes += p.cpuNodes;
      k.copies += p.copies;
      for (const [op, n] of Object.entries(p.byProvider.CPUExecutionProvider ?? {}))
        if (!op.startsWith('Memcpy')) k.cpuOps[op] = (k.cpuOps[op] ?? 0) + n;
    }
    out[kind] = k;
  }
  return out;
}

/**
 * Runs the building blocks of one W4A8 GPTQ experiment on `crops` (a handful is enough)
 * through a recording engine of kind 'webgpu' and returns every model it was handed.
 */
export async function recordWebGpuGraphs(
  graph: Graph,
  crops: Uint8Array[],
  spec: PreprocessSpec,
): Promise<RecordedGraphs> {
  const wasm = await createNodeWasmEngine();
  const graphs: Record<GraphKind, Uint8Array[]> = { fp32: [], fakeQuant: [], calibration: [], reconstruction: [] };
  let kind: GraphKind = 'fp32';
  const engine: Engine = {
    kind: 'webgpu',
    description: 'recording (wasm underneath)',
    createSession(model, options) {
      graphs[kind].push(model);
      return wasm.createSession(model, options);
    },
  };
  const fp32 = serializeModel(graph);
  graphs.fp32.push(fp32);

  const points = findQuantPoints(graph, ALL_PLACEMENT);
  const tensors = points.activations.map((p) => p.tensor);
  const batch = { batchSize: crops.length, histBatchSize: crops.length, bins: DEFAULT_BINS };
  kind = 'calibration';
  const stats = await collectActivationStats(engine, graph, tensors, crops, spec, {
    ...batch,
    histogram: false,
    moments: true,
  });
  await collectActivationStats(engine, graph, tensors, crops, spec, { ...batch, histogram: true, moments: true });

  const cfg = resolveConfig({ backend: 'academic', wBits: 4, aObserver: 'minmax', ptq: 'gptq', firstLast8bit: false });
  const weights = quantizeWeights(graph, points, cfg);
  const acts = quantizeActivations(points, stats, cfg);
  const fq = insertFakeQuant(graph, {
    weights: new Map(weights.map((w) => [w.point.initializer, w.values])),
    activations: new Map(acts.map((a) => [a.point.tensor, a.qparams])),
  });
  kind = 'fakeQuant';
  const fakeQuant = evaluationModel(engine, fq, {}).bytes;
  graphs.fakeQuant.push(fakeQuant);

  kind = 'reconstruction';
  await collectGrams(engine, graph, points, crops, spec, { batchSize: crops.length });
  await reconstructFromQuantizedPrefix(engine, graph, weights, acts, crops, spec, cfg, { batchSize: crops.length });
  return { graphs, fakeQuant, elementWise: serializeModel(fq), stats };
}

/** A W8A8 run of `graph` under the backend's defaults, activation ranges from `stats` (MinMax). */
export function w8a8Run(
  graph: Graph,
  stats: Map<string, ActivationStats>,
  backend: 'tensorrt' | 'academic',
  crops: Uint8Array[],
  spec: PreprocessSpec,
): QuantizedRun {
  const cfg = resolveConfig({ backend, aObserver: 'minmax' });
  const points = findQuantPoints(graph, cfg.placement);
  const weights = quantizeWeights(graph, points, cfg);
  const activations = quantizeActivations(points, stats, cfg);
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
    evaluation: { crops, labels: crops.map(() => 0), preds: new Int32Array(crops.length), spec },
  };
}

/** The run's fake-quant model as a WebGPU engine evaluates it (experiment/evaluate.ts evaluationModel). */
export function webgpuEvaluated(run: QuantizedRun): Uint8Array {
  const kind: Pick<Engine, 'kind'> = { kind: 'webgpu' };
  return evaluationModel(kind as Engine, run.evaluated, {}).bytes;
}

/** The run's QDQ export (src/lib/export), as the app's "download deployable" writes it. */
export function qdqExport(run: QuantizedRun): Uint8Array {
  return serializeModel(buildQdq(toDeployable(run)).graph);
}

/** The tiny seeded classifier of the browser tests (tests/support/tiny-model.ts) as a graph. */
export function tinyClassifier(): Graph {
  return parseModel(tinyClassifierModel());
}

/** `n` seeded 224×224 RGB crops (HWC bytes) for the tiny classifier. */
export function syntheticCrops(n: number, seed = 1): Uint8Array[] {
  let a = seed;
  return Array.from({ length: n }, () =>
    Uint8Array.from({ length: 224 * 224 * 3 }, () => {
      a = (a * 1664525 + 1013904223) >>> 0;
      return a >>> 24;
    }),
  );
}
