/**
 * Reconstruction as the pipeline (src/lib/pipeline) calls it: AdaRound, GPTQ, BRECQ or
 * QDrop replace a config's round-to-nearest weights between the calibration statistics and
 * the fake-quant graph, with the layers' inputs from the quantized prefix or from the FP32
 * model as the config says (see reconstruct.ts and block-recon.ts). The methods that learn
 * activation step sizes also return them (`activations`): the fake-quant graph must then be
 * built with those instead of the calibrated ones.
 */
import type { ExperimentConfig } from '../config/types.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine } from '../engine/types.ts';
import type { Graph } from '../onnx/ir.ts';
import type { QuantPoints } from '../onnx/placement.ts';
import type { ActivationQuant, WeightQuant } from '../experiment/quantize.ts';
import { collectGrams, reconstructFromQuantizedPrefix, reconstructWeights, type LayerGram } from './reconstruct.ts';
import { blockReconOptions, reconstructBlocks, usesEngineGradients } from './block-recon.ts';
import type { PtqReport } from './types.ts';

/** What reconstruction sees of one config: its round-to-nearest weights, its activation quantizers, the calibration images. */
export interface WeightContext {
  engine: Engine;
  /** the FP32 graph the quantization points were found on (BN folded when the config folds) */
  graph: Graph;
  points: QuantPoints;
  /** round-to-nearest weights on the observers' grids */
  weights: WeightQuant[];
  activations: ActivationQuant[];
  spec: PreprocessSpec;
  calibCrops: Uint8Array[];
  batchSize: number;
  /** per data split: what configs of one group share (the FP32 Gram matrices) */
  shared: Map<string, unknown>;
  signal?: AbortSignal;
  onProgress: (message: string, done: number, total: number) => void;
}

/** Key of the FP32 Gram matrices in WeightContext.shared (one pass per data split). */
const GRAMS = 'ptq:grams';

interface SharedGrams {
  byInitializer: Map<string, LayerGram>;
  seconds: number;
}

/**
 * The reconstructed weights of a config that asks for AdaRound, GPTQ, BRECQ or QDrop, with the
 * report, and the learned activation step sizes when the method learned them.
 */
export async function reconstructConfig(
  ctx: WeightContext,
  cfg: ExperimentConfig,
): Promise<{ weights: WeightQuant[]; report: PtqReport; activations?: ActivationQuant[] }> {
  if (usesEngineGradients(cfg)) {
    // BRECQ, QDrop, AdaRound with learned ranges: `activations` carries the learned step sizes
    const fixed = ctx.batchSize === 1 ? { hyper: { batch: 1, evalBatch: 1 } } : {};
    return reconstructBlocks(ctx.engine, ctx.graph, ctx.weights, ctx.activations, ctx.calibCrops, ctx.spec, {
      ...blockReconOptions(cfg),
      ...fixed,
      signal: ctx.signal,
      onProgress: (d, t, m) => ctx.onProgress(m, d, t),
    });
  }
  const label = cfg.ptq === 'adaround' ? 'AdaRound' : 'GPTQ';
  const onLayer = (d: number, t: number, node: string) =>
    ctx.onProgress(d < t ? `${label} layer ${d + 1}/${t}: ${node}` : `${label} done`, d, t);
  if (cfg.ptqInputs === 'quantized-prefix') {
    return reconstructFromQuantizedPrefix(
      ctx.engine,
      ctx.graph,
      ctx.weights,
      ctx.activations,
      ctx.calibCrops,
      ctx.spec,
      cfg,
      {
        batchSize: ctx.batchSize,
        signal: ctx.signal,
        onGramProgress: (d, t) => ctx.onProgress(`${label}: Gram matrices ${d}/${t}`, d, t),
        onProgress: onLayer,
      },
    );
  }
  let grams = ctx.shared.get(GRAMS) as SharedGrams | undefined;
  if (!grams) {
    const t0 = performance.now();
    const byInitializer = await collectGrams(ctx.engine, ctx.graph, ctx.points, ctx.calibCrops, ctx.spec, {
      batchSize: ctx.batchSize,
      signal: ctx.signal,
      onProgress: (d, t) => ctx.onProgress(`Gram matrices ${d}/${t}`, d, t),
    });
    grams = { byInitializer, seconds: (performance.now() - t0) / 1000 };
    ctx.shared.set(GRAMS, grams);
  }
  const { weights, report } = await reconstructWeights(ctx.graph, ctx.weights, grams.byInitializer, cfg, {
    engine: ctx.engine,
    signal: ctx.signal,
    onProgress: onLayer,
  });
  return { weights, report: { ...report, gramSeconds: grams.seconds } };
}
