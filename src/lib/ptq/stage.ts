/**
 * The reconstruction stage in the shape experiment/stages.ts asks for: AdaRound or GPTQ
 * replace the round-to-nearest weights between the statistics and the fake-quant graph.
 * src/lib/pipeline/run.ts plugs it in, so experiment/ never imports ptq/.
 */
import type { PipelineStages, WeightContext } from '../experiment/stages.ts';
import type { ExperimentConfig } from '../config/types.ts';
import { collectGrams, reconstructFromQuantizedPrefix, reconstructWeights, type LayerGram } from './reconstruct.ts';
import type { PtqReport } from './types.ts';
import type { WeightQuant } from '../experiment/quantize.ts';

/** Key of the FP32 Gram matrices in WeightContext.shared (one pass per data split). */
const GRAMS = 'ptq:grams';

interface SharedGrams {
  byInitializer: Map<string, LayerGram>;
  seconds: number;
}

async function apply(
  ctx: WeightContext,
  cfg: ExperimentConfig,
): Promise<{ weights: WeightQuant[]; report: PtqReport }> {
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

/** The stage, with the layers' inputs from the quantized prefix or the FP32 model as the config says (see reconstruct.ts). */
export const PTQ_STAGES: PipelineStages = { weights: { wanted: (cfg) => cfg.ptq !== 'none', apply } };
