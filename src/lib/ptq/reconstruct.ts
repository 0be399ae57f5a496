/**
 * Reconstruction of a model's weights (plugged into the pipeline by ptq/stage.ts), between calibration statistics and the
 * fake-quant graph: engine passes gather the Gram matrices the solvers need, then
 * AdaRound or GPTQ runs per layer in network order, replacing the round-to-nearest
 * weights. Two input modes (PTQ_INPUTS): 'fp32' — every layer's inputs from the FP32
 * model, one Gram pass shared by all configs of a data split (the pipeline's default,
 * measured; BN re-estimation afterwards removes the drift it leaves); 'quantized-prefix' —
 * inputs from the quantized prefix, targets from FP32, as MQBench
 * (reconstructFromQuantizedPrefix: one pass per layer, so several times slower; see
 * README for both measured). Layers whose bit width is 8 or more keep round-to-nearest
 * (at 8 bits its error is already small, and the classifier alone would cost more than
 * all the other layers).
 */
import { throwIfAborted } from '../protocol/errors.ts';
import type { ExperimentConfig } from '../protocol/config.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine } from '../engine/types.ts';
import { ensureOpset, insertFakeQuant } from '../onnx/fake-quant.ts';
import { cloneGraph, type Graph } from '../onnx/ir.ts';
import { serializeModel } from '../onnx/model.ts';
import type { QuantPoints } from '../onnx/placement.ts';
import { adaroundWith } from './adaround.ts';
import { gramProduct } from './gram-matmul.ts';
import { gptq, spdInverse } from './gptq.ts';
import { buildCrossGramGraph, buildGramGraph, gramLayout, keepOutputs, planGramChunks, positionsOf, type GramLayout } from './gram-graph.ts';
import { codesError, codesToInitializer, layerProblem, nearestCodes, outputEnergy, targetWeights, type LayerProblem } from './problem.ts';
import type { PtqLayerReport, PtqReport } from './types.ts';
import { batches } from '../experiment/batches.ts';
import type { ActivationQuant, WeightQuant } from '../experiment/quantize.ts';

/** Where the layers' inputs come from (see the module header). */
export type PtqInputs = 'fp32' | 'quantized-prefix';
export const PTQ_INPUTS: PtqInputs = 'fp32';

/**
 * Layers per pass of the quantized-prefix reconstruction. One: a layer's quantized inputs
 * must come from the prefix as it will be evaluated, i.e. with every earlier layer already
 * reconstructed. With several layers per pass the later layers of a pass saw inputs through
 * round-to-nearest weights of the earlier ones, and their targets W* compensated errors that
 * the evaluated model no longer has (measured: GPTQ W4A8 collapsed to 0 % top-1 with 14 layers
 * per pass; 78 % with one, 32 calibration / 200 evaluation images). Each pass runs only the
 * prefix the layer needs (keepOutputs).
 */
export const PREFIX_CHUNK_LAYERS = 1;

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
  /** runs AdaRound's products on the 1×1 convs (TypeScript without it) */
  engine?: Engine;
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
    const codes = method === 'adaround' ? await solveAdaRound(opts.engine, p, cfg.ptqIters) : gptq(p);
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

/** AdaRound on one layer, its product on the engine where that is faster (gram-matmul.ts). */
async function solveAdaRound(engine: Engine | undefined, p: LayerProblem, iters: number): Promise<Int32Array> {
  const { product, release } = await gramProduct(engine, p);
  try {
    return await adaroundWith(p, { iters }, product);
  } finally {
    await release();
  }
}

async function solveLayer(engine: Engine | undefined, p: LayerProblem, cfg: ExperimentConfig, wq: WeightQuant, bits: number, t1: number): Promise<{ report: PtqLayerReport; values: Float32Array }> {
  const rtn = nearestCodes(p);
  const codes = cfg.ptq === 'adaround' ? await solveAdaRound(engine, p, cfg.ptqIters) : gptq(p);
  const energy = outputEnergy(p) || 1;
  let flips = 0;
  for (let k = 0; k < codes.length; k++) if (codes[k] !== rtn[k]) flips++;
  return {
    report: {
      node: wq.point.node, initializer: wq.point.initializer, bits,
      errorBefore: codesError(p, rtn) / energy,
      errorAfter: codesError(p, codes) / energy,
      flips: flips / codes.length,
      seconds: (performance.now() - t1) / 1000,
    },
    values: codesToInitializer(p, codes, wq.point.axis),
  };
}

export interface PrefixOptions extends ReconstructOptions {
  batchSize: number;
  /** Gram pass progress within a chunk */
  onGramProgress?: (done: number, total: number) => void;
  /** sees the matrices each layer is solved with (X̃X̃ᵀ and XX̃ᵀ), before solving it */
  onLayerGrams?: (initializer: string, gram: Float64Array, cross: Float64Array, positions: number) => void;
}

/**
 * Reconstruction with inputs from the quantized prefix and targets from FP32 (MQBench):
 * layers go in chunks of PREFIX_CHUNK_LAYERS (one); for each chunk one pass over the
 * calibration images runs the FP32 model and the quantized model (activations
 * fake-quantized, weights of earlier chunks already reconstructed, later ones
 * round-to-nearest), each only as far as the chunk needs, side by side and gathers X̃X̃ᵀ
 * and XX̃ᵀ of the chunk's layers; each
 * layer then minimises ‖WX − W̃X̃‖² = ‖(W* − W̃)X̃‖² + const (problem.ts targetWeights).
 * Errors in the report are relative to ‖W*X̃‖².
 */
export async function reconstructFromQuantizedPrefix(
  engine: Engine,
  graph: Graph,
  weights: WeightQuant[],
  acts: ActivationQuant[],
  crops: Uint8Array[],
  spec: PreprocessSpec,
  cfg: ExperimentConfig,
  opts: PrefixOptions,
): Promise<{ weights: WeightQuant[]; report: PtqReport }> {
  if (cfg.ptq === 'none') throw new Error('reconstructFromQuantizedPrefix needs a reconstruction method');
  const t0 = performance.now();
  let gramSeconds = 0;
  const current = [...weights];
  const layers: PtqLayerReport[] = new Array(weights.length);
  const fp = cloneGraph(graph, { shareInitializers: true });
  ensureOpset(fp, 11);
  const actMap = new Map(acts.map((a) => [a.point.tensor, a.qparams]));
  const bitsOf = (wq: WeightQuant) => Math.round(Math.log2(wq.qparams.qmax - wq.qparams.qmin + 1));
  const todo: { index: number; layout: GramLayout }[] = [];
  weights.forEach((wq, index) => {
    const layout = gramLayout(graph, wq.point);
    const skipped = typeof layout === 'string' ? layout : bitsOf(wq) >= 8 ? '8-bit layers keep round-to-nearest' : undefined;
    if (skipped || typeof layout === 'string') {
      layers[index] = { node: wq.point.node, initializer: wq.point.initializer, bits: bitsOf(wq), errorBefore: NaN, errorAfter: NaN, flips: 0, seconds: 0, skipped };
    } else todo.push({ index, layout });
  });
  let done = 0;
  for (let c0 = 0; c0 < todo.length; c0 += PREFIX_CHUNK_LAYERS) {
    const chunk = todo.slice(c0, c0 + PREFIX_CHUNK_LAYERS);
    throwIfAborted(opts.signal);
    const tg = performance.now();
    const quant = insertFakeQuant(graph, { weights: new Map(current.map((w) => [w.point.initializer, w.values])), activations: actMap });
    ensureOpset(quant, 11);
    const { graph: merged, outputs } = buildCrossGramGraph(fp, quant, chunk.map((c) => c.layout));
    keepOutputs(merged, outputs.flatMap((o) => [o.gram, o.cross, o.shape]));
    const session = await engine.createSession(serializeModel(merged));
    const acc = outputs.map((o) => {
      const n = o.layout.groups * o.layout.cols * o.layout.cols;
      return { o, gram: new Float64Array(n), cross: new Float64Array(n), positions: 0 };
    });
    try {
      const input = session.inputNames[0];
      const fetches = outputs.flatMap((o) => [o.gram, o.cross, o.shape]);
      let b = 0;
      const nb = Math.ceil(crops.length / opts.batchSize);
      for (const batch of batches(crops, spec, opts.batchSize)) {
        throwIfAborted(opts.signal);
        const res = await session.run({ [input]: batch.tensor }, fetches);
        for (const a of acc) {
          const g = res[a.o.gram].data;
          const x = res[a.o.cross].data;
          for (let i = 0; i < g.length; i++) {
            a.gram[i] += g[i];
            a.cross[i] += x[i];
          }
          a.positions += positionsOf(a.o, res[a.o.shape].data);
        }
        opts.onGramProgress?.(++b, nb);
      }
    } finally {
      await session.release();
    }
    gramSeconds += (performance.now() - tg) / 1000;
    for (let k = 0; k < chunk.length; k++) {
      const { index } = chunk[k];
      const wq = weights[index];
      throwIfAborted(opts.signal);
      opts.onProgress?.(done, todo.length, wq.point.node);
      await new Promise((r) => setTimeout(r, 0));
      const t1 = performance.now();
      const a = acc[k];
      opts.onLayerGrams?.(wq.point.initializer, a.gram, a.cross, a.positions);
      const init = graph.initializers.get(wq.point.initializer)!;
      const p = layerProblem(init.data as Float32Array, init.dims, wq.point.axis, a.o.layout.groups, a.gram, a.positions, wq.qparams);
      p.target = targetWeights(p, a.cross, spdInverse);
      const solved = await solveLayer(engine, p, cfg, wq, bitsOf(wq), t1);
      layers[index] = solved.report;
      current[index] = { ...wq, values: solved.values };
      done++;
    }
  }
  opts.onProgress?.(todo.length, todo.length, '');
  return {
    weights: current,
    report: {
      method: cfg.ptq, ...(cfg.ptq === 'adaround' ? { iters: cfg.ptqIters } : {}), layers,
      gramSeconds, solveSeconds: (performance.now() - t0) / 1000 - gramSeconds,
    },
  };
}
