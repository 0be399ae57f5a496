/**
 * Reconstruction as the pipeline (src/lib/pipeline) calls it: AdaRound or GPTQ replace a
 * config's round-to-nearest weights between the calibration statistics and the fake-quant
 * graph, with the layers' inputs from the quantized prefix or from the FP32 model as the
 * config says (see reconstruct.ts).
 */
import type { ExperimentConfig } from '../config/types.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine } from '../engine/types.ts';
import type { Graph } from '../onnx/ir.ts';
import type { QuantPoints } from '../onnx/placement.ts';
import type { ActivationQuant, WeightQuant } from '../experiment/quantize.ts';
import { collectGrams, reconstructFromQuantizedPrefix, reconstructWeights, type LayerGram } from './reconstruct.ts';
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
  /**
   * done/total in layers, fractional while a layer's inputs are read; `count` is the whole
   * layers a person reads ("layer 3 / 51"), one counter for the whole reconstruction
   */
  onProgress: (
    message: string,
    done: number,
    total: number,
    count?: { done: number; total: number; of: string },
  ) => void;
}

/**
 * The share of the reconstruction's time spent reading layer inputs (the Gram matrices),
 * so the fractional progress moves at about the pace of the clock: per layer when the
 * inputs come from the quantized prefix, once up front when they come from FP32
 * (measured on MobileNet-V2, docs/ui.md).
 */
export const GRAM_SHARE = { prefix: 0.3, fp32: 0.2 } as const;

/** Key of the FP32 Gram matrices in WeightContext.shared (one pass per data split). */
const GRAMS = 'ptq:grams';

interface SharedGrams {
  byInitializer: Map<string, LayerGram>;
  seconds: number;
}

/** The reconstructed weights of a config that asks for AdaRound or GPTQ, with the report. */
export async function reconstructConfig(
  ctx: WeightContext,
  cfg: ExperimentConfig,
): Promise<{ weights: WeightQuant[]; report: PtqReport }> {
  const label = cfg.ptq === 'adaround' ? 'AdaRound' : 'GPTQ';
  const count = (done: number, total: number) => ({ done, total, of: 'layers' });
  if (cfg.ptqInputs === 'quantized-prefix') {
    // per layer: its inputs through the quantized prefix (Gram), then its solve
    let layer = 0;
    let layers = 0;
    const share = GRAM_SHARE.prefix;
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
        // the layer count is known from the first layer's solve on; the first layer's inputs
        // are read against the count of weight layers (an upper bound)
        onGramProgress: (d, t) =>
          ctx.onProgress(
            layers
              ? `${label} layer ${layer + 1}/${layers}: reading its inputs`
              : `${label}: reading the first layer's inputs`,
            layer + (share * d) / t,
            layers || ctx.weights.length,
            layers ? count(layer, layers) : undefined,
          ),
        onProgress: (d, t, node) => {
          layer = d;
          layers = t;
          ctx.onProgress(
            d < t ? `${label} layer ${d + 1}/${t}: ${node}` : `${label} done`,
            Math.min(t, d + (d < t ? share : 0)),
            t,
            count(d, t),
          );
          if (d < t) layer = d + 1;
        },
      },
    );
  }
  const layers = ctx.weights.length;
  const share = GRAM_SHARE.fp32;
  const onLayer = (d: number, t: number, node: string) =>
    ctx.onProgress(
      d < t ? `${label} layer ${d + 1}/${t}: ${node}` : `${label} done`,
      t * share + (1 - share) * d,
      t,
      count(d, t),
    );
  let grams = ctx.shared.get(GRAMS) as SharedGrams | undefined;
  if (!grams) {
    const t0 = performance.now();
    const byInitializer = await collectGrams(ctx.engine, ctx.graph, ctx.points, ctx.calibCrops, ctx.spec, {
      batchSize: ctx.batchSize,
      signal: ctx.signal,
      onProgress: (d, t) =>
        ctx.onProgress(`${label}: reading the layers' inputs`, (layers * share * d) / t, layers, count(0, layers)),
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
