/**
 * The reconstruction stage of the pipeline, between calibration statistics and the
 * fake-quant graph: Gram matrices of every quantized layer's inputs (one engine pass
 * per chunk of layers over the calibration images), then AdaRound or GPTQ per layer in
 * network order, replacing the round-to-nearest weights.
 *
 * Inputs are the FP32 model's activations (not the quantized prefix's), so the Gram
 * matrices do not depend on the config and a sweep computes them once per data split.
 * Layers whose bit width is 8 or more keep round-to-nearest (at 8 bits its error is
 * already negligible, and the classifier alone would cost more than the rest).
 */
import { throwIfAborted } from '../protocol/errors.ts';
import type { ExperimentConfig } from '../protocol/config.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine } from '../engine/types.ts';
import type { Graph } from '../onnx/ir.ts';
import { serializeModel } from '../onnx/model.ts';
import type { QuantPoints } from '../onnx/placement.ts';
import { adaround } from '../ptq/adaround.ts';
import { gptq } from '../ptq/gptq.ts';
import { buildGramGraph, gramLayout, planGramChunks, positionsOf, type GramLayout } from '../ptq/gram-graph.ts';
import { codesError, codesToInitializer, layerProblem, nearestCodes, outputEnergy } from '../ptq/problem.ts';
import type { PtqLayerReport, PtqReport } from '../ptq/types.ts';
import { batches } from './batches.ts';
import type { WeightQuant } from './quantize.ts';

export interface LayerGram {
  layout: GramLayout;
  /** [groups, cols, cols] summed over all calibration positions */
  gram: Float64Array;
  positions: number;
}

export interface GramOptions {
  batchSize: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Gram matrices of the inputs of every weight point the solvers can handle, by
 * initializer name. Layers they cannot handle are absent (they keep round-to-nearest).
 */
export async function collectGrams(
  engine: Engine,
  graph: Graph,
  points: QuantPoints,
  crops: Uint8Array[],
  spec: PreprocessSpec,
  opts: GramOptions,
): Promise<Map<string, LayerGram>> {
  const layouts = points.weights.map((p) => gramLayout(graph, p)).filter((l): l is GramLayout => typeof l !== 'string');
  const chunks = planGramChunks(layouts);
  const out = new Map<string, LayerGram>();
  const perChunk = Math.ceil(crops.length / opts.batchSize);
  let done = 0;
  for (const chunk of chunks) {
    const { graph: gg, outputs } = buildGramGraph(graph, chunk);
    const session = await engine.createSession(serializeModel(gg));
    const acc = outputs.map((o) => ({ o, gram: new Float64Array(o.layout.groups * o.layout.cols * o.layout.cols), positions: 0 }));
    try {
      const input = session.inputNames[0];
      const fetches = outputs.flatMap((o) => [o.gram, o.shape]);
      for (const b of batches(crops, spec, opts.batchSize)) {
        throwIfAborted(opts.signal);
        const res = await session.run({ [input]: b.tensor }, fetches);
        for (const a of acc) {
          const g = res[a.o.gram].data;
          for (let i = 0; i < g.length; i++) a.gram[i] += g[i];
          a.positions += positionsOf(a.o, res[a.o.shape].data);
        }
        opts.onProgress?.(++done, perChunk * chunks.length);
      }
    } finally {
      await session.release();
    }
    for (const a of acc) out.set(a.o.layout.point.initializer, { layout: a.o.layout, gram: a.gram, positions: a.positions });
  }
  return out;
}

export interface ReconstructOptions {
  signal?: AbortSignal;
  /** called before each layer (done = layers finished) */
  onProgress?: (done: number, total: number, node: string) => void;
}

/**
 * Replaces round-to-nearest weights with AdaRound's or GPTQ's, layer by layer in
 * network order; checks `signal` between layers. The grid (scale, zero point) is the
 * observer's. Returns new WeightQuant objects; the inputs are not modified.
 */
export async function reconstructWeights(
  graph: Graph,
  weights: WeightQuant[],
  grams: Map<string, LayerGram>,
  cfg: ExperimentConfig,
  opts: ReconstructOptions = {},
): Promise<{ weights: WeightQuant[]; report: PtqReport }> {
  if (cfg.ptq === 'none') throw new Error('reconstructWeights needs a reconstruction method');
  const method = cfg.ptq;
  const t0 = performance.now();
  const layers: PtqLayerReport[] = [];
  const result: WeightQuant[] = [];
  for (let i = 0; i < weights.length; i++) {
    const wq = weights[i];
    throwIfAborted(opts.signal);
    opts.onProgress?.(i, weights.length, wq.point.node);
    // let the event loop deliver an abort (or a progress message) between layers
    await new Promise((r) => setTimeout(r, 0));
    const t1 = performance.now();
    const bits = Math.round(Math.log2(wq.qparams.qmax - wq.qparams.qmin + 1));
    const base = { node: wq.point.node, initializer: wq.point.initializer, bits };
    const lg = grams.get(wq.point.initializer);
    const skip = !lg ? 'no Gram matrix for this layer' : bits >= 8 ? '8-bit layers keep round-to-nearest' : undefined;
    if (skip || !lg) {
      layers.push({ ...base, errorBefore: NaN, errorAfter: NaN, flips: 0, seconds: 0, skipped: skip });
      result.push(wq);
      continue;
    }
    const init = graph.initializers.get(wq.point.initializer)!;
    const p = layerProblem(init.data as Float32Array, init.dims, wq.point.axis, lg.layout.groups, lg.gram, lg.positions, wq.qparams);
    const rtn = nearestCodes(p);
    const codes = method === 'adaround' ? adaround(p, { iters: cfg.ptqIters }) : gptq(p);
    const energy = outputEnergy(p) || 1;
    let flips = 0;
    for (let k = 0; k < codes.length; k++) if (codes[k] !== rtn[k]) flips++;
    layers.push({
      ...base,
      errorBefore: codesError(p, rtn) / energy,
      errorAfter: codesError(p, codes) / energy,
      flips: flips / codes.length,
      seconds: (performance.now() - t1) / 1000,
    });
    result.push({ ...wq, values: codesToInitializer(p, codes, wq.point.axis) });
  }
  opts.onProgress?.(weights.length, weights.length, '');
  return {
    weights: result,
    report: { method, ...(method === 'adaround' ? { iters: cfg.ptqIters } : {}), layers, gramSeconds: 0, solveSeconds: (performance.now() - t0) / 1000 },
  };
}
