/**
 * Reconstruction of a model's weights (plugged into the pipeline by ptq/stage.ts), between calibration statistics and the
 * fake-quant graph: engine passes gather the Gram matrices the solvers need, then
 * AdaRound or GPTQ runs per layer in network order, replacing the round-to-nearest
 * weights. Two input modes (config ptqInputs): 'quantized-prefix' (the default) — inputs
 * from the quantized prefix, targets from FP32, as MQBench (reconstructFromQuantizedPrefix:
 * one pass per layer, each resuming from a stored cut); 'fp32' — every layer's inputs from
 * the FP32 model, one Gram pass shared by all configs of a data split (BN re-estimation
 * afterwards removes most of the drift it leaves); docs/reconstruction.md has both measured.
 * Layers whose bit width is 8 or more keep round-to-nearest (at 8 bits its error is already
 * small, and the classifier alone would cost more than all the other layers).
 */
import { throwIfAborted } from '../util/errors.ts';
import type { ExperimentConfig } from '../config/types.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine, FloatTensor } from '../engine/types.ts';
import { ensureOpset, insertFakeQuant } from '../onnx/fake-quant.ts';
import { fakeQuantWithoutRound } from '../onnx/fq-floor.ts';
import { cloneGraph, type Graph, type ValueInfo } from '../onnx/ir.ts';
import { serializeModel } from '../onnx/model.ts';
import type { QuantPoints } from '../onnx/placement.ts';
import { adaroundWith } from './adaround.ts';
import { gramProduct } from './gram-matmul.ts';
import { gptq } from './gptq.ts';
import {
  buildCrossGramGraph,
  buildGramGraph,
  gramLayout,
  planGramChunks,
  positionsOf,
  QUANT_PREFIX,
  type GramLayout,
} from './gram-graph.ts';
import { cutSegment, latestCut, nodePositions, singleTensorCuts, type Cut } from './cuts.ts';
import {
  codesError,
  codesToInitializer,
  layerProblem,
  nearestCodes,
  outputEnergy,
  targetWeights,
  type LayerProblem,
} from './problem.ts';
import type { PtqLayerReport, PtqReport } from './types.ts';
import { batches } from '../experiment/batches.ts';
import type { ActivationQuant, WeightQuant } from '../experiment/quantize.ts';

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
    const acc = outputs.map((o) => ({
      o,
      gram: new Float64Array(o.layout.groups * o.layout.cols * o.layout.cols),
      positions: 0,
    }));
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
    for (const a of acc)
      out.set(a.o.layout.point.initializer, { layout: a.o.layout, gram: a.gram, positions: a.positions });
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
    const lg = grams.get(wq.point.initializer);
    const skip = !lg ? 'no Gram matrix for this layer' : eightBit(wq);
    if (skip || !lg) {
      layers.push(skippedReport(wq, skip));
      result.push(wq);
      continue;
    }
    const init = graph.initializers.get(wq.point.initializer)!;
    const p = layerProblem(
      init.data as Float32Array,
      init.dims,
      wq.point.axis,
      lg.layout.groups,
      lg.gram,
      lg.positions,
      wq.qparams,
    );
    const solved = await solveLayer(opts.engine, p, cfg, wq, t1);
    layers.push(solved.report);
    result.push({ ...wq, values: solved.values });
  }
  opts.onProgress?.(weights.length, weights.length, '');
  return {
    weights: result,
    report: {
      method,
      ...(method === 'adaround' ? { iters: cfg.ptqIters } : {}),
      layers,
      gramSeconds: 0,
      solveSeconds: (performance.now() - t0) / 1000,
    },
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

/** Bit width of a layer's weight grid. */
export function bitsOf(wq: WeightQuant): number {
  return Math.round(Math.log2(wq.qparams.qmax - wq.qparams.qmin + 1));
}

export const EIGHT_BIT = '8-bit layers keep round-to-nearest';

/** Why a layer keeps round-to-nearest by its bit width (8 bits or more), in both input modes. */
export function eightBit(wq: WeightQuant): string | undefined {
  return bitsOf(wq) >= 8 ? EIGHT_BIT : undefined;
}

/** The report of a layer that kept its round-to-nearest weights, and why. */
export function skippedReport(wq: WeightQuant, skipped: string | undefined): PtqLayerReport {
  return {
    node: wq.point.node,
    initializer: wq.point.initializer,
    bits: bitsOf(wq),
    errorBefore: NaN,
    errorAfter: NaN,
    flips: 0,
    seconds: 0,
    skipped,
  };
}

/** Solves one layer with the config's method; `t1` is when its work began (for the report's seconds). */
async function solveLayer(
  engine: Engine | undefined,
  p: LayerProblem,
  cfg: ExperimentConfig,
  wq: WeightQuant,
  t1: number,
): Promise<{ report: PtqLayerReport; values: Float32Array }> {
  const rtn = nearestCodes(p);
  const codes = cfg.ptq === 'adaround' ? await solveAdaRound(engine, p, cfg.ptqIters) : gptq(p);
  const energy = outputEnergy(p) || 1;
  let flips = 0;
  for (let k = 0; k < codes.length; k++) if (codes[k] !== rtn[k]) flips++;
  return {
    report: {
      node: wq.point.node,
      initializer: wq.point.initializer,
      bits: bitsOf(wq),
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
  /** progress of a layer's pass over the calibration batches */
  onGramProgress?: (done: number, total: number) => void;
  /** sees the matrices each layer is solved with (X̃X̃ᵀ and XX̃ᵀ), before solving it */
  onLayerGrams?: (initializer: string, gram: Float64Array, cross: Float64Array, positions: number) => void;
  /** bytes of stored cut activations (FP32 and quantized together); 0 runs every pass from the input */
  cutCacheBytes?: number;
}

/**
 * Memory for the stored cut activations (cuts.ts) of the quantized-prefix reconstruction,
 * FP32 and quantized model together. With 128 calibration images MobileNet-V2 then resumes
 * from every block boundary except the two 112×112 ones (32 channels: 205 MB per model);
 * ResNet-18 from every block boundary after the stem (64×56×56: 103 MB per model).
 */
export const CUT_CACHE_BYTES = 256 * 2 ** 20;

/** Where a pass resumes: a cut tensor and its values per batch (null: the model input, made from the crops). */
interface Resume {
  gap: number;
  info: ValueInfo;
  values: (FloatTensor | null)[] | null;
}

/** Floats per image of every cut tensor of both models, from one run on two images. */
async function cutSizes(
  engine: Engine,
  merged: Graph,
  names: string[],
  crops: Uint8Array[],
  spec: PreprocessSpec,
): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  if (!names.length) return sizes;
  const probe = cloneGraph(merged, { shareInitializers: true });
  cutSegment(
    probe,
    probe.inputs,
    names.map((name) => ({ name, dtype: 'float32', shape: null })),
  );
  const session = await engine.createSession(serializeModel(probe));
  try {
    const n = Math.min(2, crops.length);
    const batch = batches(crops.slice(0, n), spec, n).next().value!;
    const res = await session.run({ [session.inputNames[0]]: batch.tensor }, names);
    // a tensor whose first dimension is not the batch cannot be split by image: never stored
    for (const name of names) sizes.set(name, res[name].dims[0] === n ? res[name].data.length / n : Infinity);
  } finally {
    await session.release();
  }
  return sizes;
}

/**
 * Reconstruction with inputs from the quantized prefix and targets from FP32 (MQBench),
 * one layer at a time in network order. For each layer one pass over the calibration images
 * runs the FP32 model and the quantized model (activations fake-quantized, earlier layers
 * already reconstructed, later ones round-to-nearest) side by side and gathers X̃X̃ᵀ and
 * XX̃ᵀ; the layer then minimises ‖WX − W̃X̃‖² = ‖(W* − W̃)X̃‖² + const (problem.ts
 * targetWeights). A pass does not start at the input: each model's values at the latest
 * single-tensor cut before the layer (cuts.ts) are kept from the previous pass, so a pass
 * runs one block or less, and the whole reconstruction about two forward passes of each
 * model plus the Gram products. Errors in the report are relative to ‖W*X̃‖².
 *
 * One layer per pass: a layer's quantized inputs must come from the prefix as it will be
 * evaluated, with every earlier layer already reconstructed. Gathering several layers in
 * one pass gave the later ones inputs through round-to-nearest weights of the earlier ones,
 * and their targets W* compensated errors the evaluated model no longer has: GPTQ W4A8
 * collapsed that way (docs/reconstruction.md, "Measurements behind the design").
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
  // on WebGPU, Round built from Floor (no Round kernel there); decided once, so every pass
  // runs the same nodes (the cuts are positions in quant0)
  const roundFree = engine.kind === 'webgpu';
  const quantWith = (ws: WeightQuant[]) => {
    const q = insertFakeQuant(graph, {
      weights: new Map(ws.map((w) => [w.point.initializer, w.values])),
      activations: actMap,
    });
    ensureOpset(q, 11);
    return roundFree ? fakeQuantWithoutRound(q).graph : q;
  };

  // the quantized graph has the same nodes for every layer (only weight values change)
  const quant0 = quantWith(current);
  const fpPos = nodePositions(fp);
  const qPos = nodePositions(quant0);
  const todo: { index: number; layout: GramLayout }[] = [];
  weights.forEach((wq, index) => {
    const layout = gramLayout(graph, wq.point);
    const skipped = typeof layout === 'string' ? layout : eightBit(wq);
    if (skipped || typeof layout === 'string') layers[index] = skippedReport(wq, skipped);
    else todo.push({ index, layout });
  });
  // network order: a layer's inputs must pass through every reconstructed layer before it
  todo.sort((a, b) => qPos.get(weights[a.index].point.node)! - qPos.get(weights[b.index].point.node)!);

  const inputInfo = graph.inputs[0];
  const qName = (t: string) => (quant0.inputs.some((v) => v.name === t) ? t : QUANT_PREFIX + t);
  const budget = (opts.cutCacheBytes ?? CUT_CACHE_BYTES) / 2;
  const fpCuts = budget > 0 && graph.inputs.length === 1 ? singleTensorCuts(fp) : [];
  const qCuts =
    budget > 0 && graph.inputs.length === 1
      ? singleTensorCuts(quant0).map((c) => ({ ...c, tensor: qName(c.tensor) }))
      : [];
  const candidates = [...new Set([...fpCuts, ...qCuts].map((c) => c.tensor).filter((t) => t !== inputInfo?.name))];
  const tp = performance.now();
  const sizes = candidates.length
    ? await cutSizes(engine, buildCrossGramGraph(fp, quant0, []).graph, candidates, crops, spec)
    : new Map<string, number>();
  gramSeconds += (performance.now() - tp) / 1000;
  const fits = (c: Cut) =>
    c.tensor !== inputInfo?.name && (sizes.get(c.tensor) ?? Infinity) * crops.length * 4 <= budget;
  const start = (): Resume => ({ gap: 0, info: inputInfo, values: null });
  let resumeFp = start();
  let resumeQ = start();

  let done = 0;
  for (const { index, layout } of todo) {
    throwIfAborted(opts.signal);
    const wq = weights[index];
    const tg = performance.now();
    const quant = done === 0 ? quant0 : quantWith(current);
    const { graph: merged, outputs } = buildCrossGramGraph(fp, quant, [layout]);
    const o = outputs[0];
    const nextFp = latestCut(fpCuts, fpPos.get(wq.point.node)!, fits);
    const nextQ = latestCut(qCuts, qPos.get(wq.point.node)!, fits);
    const advFp = nextFp && nextFp.gap > resumeFp.gap ? nextFp : undefined;
    const advQ = nextQ && nextQ.gap > resumeQ.gap ? nextQ : undefined;
    const fetches = [o.gram, o.cross, o.shape, ...(advFp ? [advFp.tensor] : []), ...(advQ ? [advQ.tensor] : [])];
    const outInfo = fetches.map(
      (name) => merged.outputs.find((v) => v.name === name) ?? { name, dtype: 'float32' as const, shape: null },
    );
    const ins = resumeFp.info.name === resumeQ.info.name ? [resumeFp.info] : [resumeFp.info, resumeQ.info];
    cutSegment(merged, ins, outInfo);
    const session = await engine.createSession(serializeModel(merged));
    const gram = new Float64Array(layout.groups * layout.cols * layout.cols);
    const cross = new Float64Array(gram.length);
    let positions = 0;
    const storedFp: FloatTensor[] = [];
    const storedQ: FloatTensor[] = [];
    try {
      let b = 0;
      const nb = Math.ceil(crops.length / opts.batchSize);
      for (const batch of batches(crops, spec, opts.batchSize)) {
        throwIfAborted(opts.signal);
        const feeds: Record<string, FloatTensor> = {};
        for (const r of [resumeFp, resumeQ]) feeds[r.info.name] = r.values ? r.values[b]! : batch.tensor;
        const res = await session.run(feeds, fetches);
        // the old cut's values are no longer needed once the new cut is stored
        if (advFp) {
          storedFp.push(res[advFp.tensor]);
          if (resumeFp.values) resumeFp.values[b] = null;
        }
        if (advQ) {
          storedQ.push(res[advQ.tensor]);
          if (resumeQ.values) resumeQ.values[b] = null;
        }
        const g = res[o.gram].data;
        const x = res[o.cross].data;
        for (let i = 0; i < g.length; i++) {
          gram[i] += g[i];
          cross[i] += x[i];
        }
        positions += positionsOf(o, res[o.shape].data);
        b++;
        opts.onGramProgress?.(b, nb);
      }
    } finally {
      await session.release();
    }
    const stored = (c: Cut, values: FloatTensor[]): Resume => ({
      gap: c.gap,
      info: { name: c.tensor, dtype: 'float32', shape: [null, ...values[0].dims.slice(1)] },
      values,
    });
    if (advFp) resumeFp = stored(advFp, storedFp);
    if (advQ) resumeQ = stored(advQ, storedQ);
    gramSeconds += (performance.now() - tg) / 1000;

    opts.onProgress?.(done, todo.length, wq.point.node);
    await new Promise((r) => setTimeout(r, 0));
    throwIfAborted(opts.signal);
    const t1 = performance.now();
    opts.onLayerGrams?.(wq.point.initializer, gram, cross, positions);
    const init = graph.initializers.get(wq.point.initializer)!;
    const p = layerProblem(
      init.data as Float32Array,
      init.dims,
      wq.point.axis,
      layout.groups,
      gram,
      positions,
      wq.qparams,
    );
    p.target = targetWeights(p, cross);
    const solved = await solveLayer(engine, p, cfg, wq, t1);
    layers[index] = solved.report;
    current[index] = { ...wq, values: solved.values };
    done++;
  }
  opts.onProgress?.(todo.length, todo.length, '');
  return {
    weights: current,
    report: {
      method: cfg.ptq,
      ...(cfg.ptq === 'adaround' ? { iters: cfg.ptqIters } : {}),
      layers,
      gramSeconds,
      solveSeconds: (performance.now() - t0) / 1000 - gramSeconds,
    },
  };
}
