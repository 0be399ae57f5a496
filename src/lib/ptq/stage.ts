/**
 * Reconstruction as the pipeline (src/lib/pipeline) calls it: AdaRound, GPTQ, BRECQ or
 * QDrop replace a config's round-to-nearest weights between the calibration statistics and
 * the fake-quant graph, with the layers' inputs from the quantized prefix or from the FP32
 * model as the config says (see reconstruct.ts and block-recon.ts). The methods that learn
 * activation step sizes also return them (`activations`): the fake-quant graph must then be
 * built with those instead of the calibrated ones.
 */
import type { ExperimentConfig } from '../config/types.ts';
import { PTQ_LABEL } from '../config/names.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine } from '../engine/types.ts';
import type { Graph } from '../onnx/ir.ts';
import type { QuantPoints } from '../onnx/placement.ts';
import type { ActivationQuant, WeightQuant } from '../experiment/quantize.ts';
import {
  collectGrams,
  eightBit,
  reconstructFromQuantizedPrefix,
  reconstructWeights,
  type LayerGram,
} from './reconstruct.ts';
import { gramLayout } from './gram-graph.ts';
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
 * The share of the reconstruction's time spent reading every layer's inputs up front when
 * they come from FP32 (measured on MobileNet-V2, docs/ui.md).
 */
export const GRAM_SHARE = { fp32: 0.2 } as const;

/**
 * A layer's work, so that the progress moves at about the pace of the clock: layers differ
 * a hundredfold (MobileNet-V2's last 1×1 convolutions take a third of the reconstruction's
 * time). One unit is the fixed part of a layer (reading its inputs, setting up its solve);
 * the solve adds its products: out·cols² for AdaRound (its iterations' updates), and for
 * GPTQ also groups·cols³ (the inverse of each group's Gram matrix). PRODUCTS_PER_UNIT is
 * their count that takes as long as the fixed part (docs/ui.md).
 */
export const PRODUCTS_PER_UNIT = 6e6;

export function layerWork(graph: Graph, wq: WeightQuant, method: ExperimentConfig['ptq']): number {
  const layout = gramLayout(graph, wq.point);
  const w = graph.initializers.get(wq.point.initializer);
  if (typeof layout === 'string' || !w) return 1;
  const out = w.dims[wq.point.axis] ?? 1;
  const inverse = method === 'gptq' ? layout.groups * layout.cols ** 3 : 0;
  return 1 + (out * layout.cols * layout.cols + inverse) / PRODUCTS_PER_UNIT;
}

/**
 * Counts the reconstruction's work in layer units: the layers a reconstruction solves (not
 * the 8-bit ones, which keep round-to-nearest) weighted by layerWork. `at` is the work done
 * as a share of all, given the layer being solved and how far its fixed part is.
 */
class LayerMeter {
  private readonly work = new Map<string, number>();
  private readonly total: number;
  private finished = 0;
  private current: string | undefined;

  constructor(ctx: WeightContext, cfg: ExperimentConfig) {
    for (const wq of ctx.weights)
      if (!eightBit(wq) && typeof gramLayout(ctx.graph, wq.point) !== 'string')
        this.work.set(wq.point.node, layerWork(ctx.graph, wq, cfg.ptq));
    this.total = [...this.work.values()].reduce((s, x) => s + x, 0);
  }

  /** the share done while the next layer's fixed part is `part` (0…1) done */
  next(part: number): number {
    if (this.current !== undefined) this.finished += this.work.get(this.current) ?? 0;
    this.current = undefined;
    return this.share(this.finished + Math.min(1, part));
  }

  /** the share done when `node`'s solve starts (its fixed part done when `fixedDone`) */
  solving(node: string, fixedDone: boolean): number {
    if (this.current !== undefined && this.current !== node) this.next(0);
    this.current = node;
    return this.share(this.finished + (fixedDone ? 1 : 0));
  }

  private share(w: number): number {
    return this.total > 0 ? Math.min(1, w / this.total) : 0;
  }
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
      onProgress: (d, t, m, count) => ctx.onProgress(m, d, t, count),
    });
  }
  const label = cfg.ptq === 'adaround' ? PTQ_LABEL.adaround : PTQ_LABEL.gptq;
  const count = (done: number, total: number) => ({ done, total, of: 'layers' });
  const meter = new LayerMeter(ctx, cfg);
  if (cfg.ptqInputs === 'quantized-prefix') {
    // per layer: its inputs through the quantized prefix (Gram), then its solve
    let layer = 0;
    let layers = 0;
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
        onGramProgress: (d, t) => {
          const total = layers || ctx.weights.length;
          ctx.onProgress(
            layers
              ? `${label} layer ${layer + 1}/${layers}: reading its inputs`
              : `${label}: reading the first layer's inputs`,
            total * meter.next(d / t),
            total,
            layers ? count(layer, layers) : undefined,
          );
        },
        onProgress: (d, t, node) => {
          layer = d;
          layers = t;
          ctx.onProgress(
            d < t ? `${label} layer ${d + 1}/${t}: ${node}` : `${label} done`,
            d < t ? t * meter.solving(node, true) : t,
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
      d < t ? t * (share + (1 - share) * meter.solving(node, false)) : t,
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
