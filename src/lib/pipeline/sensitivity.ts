/**
 * Measuring per-layer sensitivity on a real model: for each weight layer, a model with
 * only that layer's weights fake-quantized (the config's weight scheme and bit width;
 * activations and every other layer stay FP32), evaluated on the first `images`
 * evaluation images against the FP32 predictions. One session per layer.
 */
import { QpError, throwIfAborted } from '../util/errors.ts';
import type { ExperimentConfig } from '../config/types.ts';
import { prepareCrops } from '../data/crops.ts';
import { sampleSplits } from '../data/dataset.ts';
import { foldBatchNorm } from '../onnx/fold-bn.ts';
import { insertFakeQuant } from '../onnx/fake-quant.ts';
import { parseModel, serializeModel } from '../onnx/model.ts';
import { findQuantPoints } from '../onnx/placement.ts';
import type { Graph } from '../onnx/ir.ts';
import { evaluate } from '../experiment/evaluate.ts';
import { quantizeWeights, weightBitsOf } from '../experiment/quantize.ts';
import type { ProgressFn, RunInputs } from '../experiment/types.ts';
import { applyCle } from '../corrections/cle-run.ts';
import type { LayerSensitivity } from '../analysis/sensitivity.ts';

export interface SensitivityOptions {
  /** evaluation images used (from the start of the config's evaluation split; default 64) */
  images?: number;
  batchSize?: number;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
}

export interface SensitivityResult {
  images: number;
  fp32Top1: number;
  /** in network order */
  layers: LayerSensitivity[];
  /** every weight layer with its parameter count and its bit width under cfg (layerBits aside): for model sizes */
  weights: { layer: string; params: number; bits: number }[];
  seconds: number;
}

/**
 * Sensitivity of every weight layer of `cfg`'s model to cfg.wBits, except the first and
 * last layer when cfg.firstLast8bit keeps them at 8 bits (layerBits is ignored: each
 * layer is measured at the low width). The graph is
 * prepared as the pipeline does (BN folding, CLE when cfg.cle).
 */
export async function measureSensitivity(
  cfg: ExperimentConfig,
  inputs: RunInputs,
  opts: SensitivityOptions = {},
): Promise<SensitivityResult> {
  const t0 = performance.now();
  const { engine, model, dataset } = inputs;
  const n = opts.images ?? 64;
  const batchSize = opts.batchSize ?? 32;
  const split = sampleSplits(dataset.items.length, cfg.calib, cfg.eval, cfg.seed);
  const evalItems = split.eval.slice(0, n).map((i) => dataset.items[i]);
  const calibItems = cfg.cle ? split.calib.slice(0, 32).map((i) => dataset.items[i]) : [];
  const { crops } = await prepareCrops([...calibItems, ...evalItems], model.preprocess, inputs.cropStore, {
    signal: opts.signal,
    namespace: dataset.cacheNamespace,
  });
  const calibCrops = crops.slice(0, calibItems.length).filter((c): c is Uint8Array => !!c);
  const evalCrops: Uint8Array[] = [];
  const labels: number[] = [];
  crops.slice(calibItems.length).forEach((c, i) => {
    if (c) {
      evalCrops.push(c);
      labels.push(evalItems[i].label);
    }
  });
  if (evalCrops.length === 0)
    throw new QpError(
      'DATA_EMPTY',
      'None of the images chosen for the sensitivity pass could be read. Check that the data folder contains JPEG images.',
    );

  const base = parseModel(inputs.modelBytes);
  let graph: Graph = cfg.foldBn ? foldBatchNorm(base).graph : base;
  const run = async (g: Graph) => {
    const s = await engine.createSession(serializeModel(g));
    try {
      return await evaluate(s, evalCrops, labels, model.preprocess, { batchSize, signal: opts.signal });
    } finally {
      await s.release();
    }
  };
  const fp32 = await run(graph);
  if (cfg.cle)
    graph = (await applyCle(engine, graph, calibCrops, model.preprocess, { batchSize, signal: opts.signal })).graph;
  const points = findQuantPoints(graph, cfg.placement);
  const low = { ...cfg, firstLast8bit: false, layerBits: {} };
  // layers firstLast8bit already keeps at 8 bits are not candidates
  const candidates = points.weights.filter((p) => weightBitsOf(p, { ...cfg, layerBits: {} }) === undefined);
  const weights = quantizeWeights(graph, { ...points, weights: candidates }, low);
  const layers: LayerSensitivity[] = [];
  for (const [i, w] of weights.entries()) {
    throwIfAborted(opts.signal);
    opts.onProgress?.({
      stage: 'analyze',
      done: i,
      total: weights.length,
      message: `Sensitivity ${w.point.node} ${i + 1}/${weights.length}`,
    });
    const q = await run(
      insertFakeQuant(graph, { weights: new Map([[w.point.initializer, w.values]]), activations: new Map() }),
    );
    let differ = 0;
    for (let k = 0; k < q.n; k++) if (q.preds[k] !== fp32.preds[k]) differ++;
    layers.push({
      layer: w.point.node,
      params: w.values.length,
      top1: q.top1Hits / q.n,
      top1Drop: (fp32.top1Hits - q.top1Hits) / q.n,
      disagreement: differ / q.n,
    });
  }
  const all = points.weights.map((p) => ({
    layer: p.node,
    params: graph.initializers.get(p.initializer)!.data.length,
    bits: weightBitsOf(p, { ...cfg, layerBits: {} }) ?? cfg.wBits,
  }));
  return {
    images: evalCrops.length,
    fp32Top1: fp32.top1Hits / fp32.n,
    layers,
    weights: all,
    seconds: (performance.now() - t0) / 1000,
  };
}
