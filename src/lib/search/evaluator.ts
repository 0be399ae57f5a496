/**
 * A real `evaluate(config, purpose)` for the searches, through the one pipeline loop: each
 * configuration runs as a Run of it would, with hooks that keep the prepared groups (FP32
 * outputs and calibration statistics, one for the ranking images and one for all) and
 * memoize round-to-nearest weights per layer across configurations. 'rank' evaluates on a
 * smaller evaluation split of the same seed (`rankImages`), 'validate' on the base config's.
 * Configurations must not ask for reconstruction (the memo rounds to nearest): the searches
 * change weight bits only.
 */
import { QpError } from '../util/errors.ts';
import type { ExperimentConfig } from '../config/types.ts';
import { weightBitsOf, type WeightQuant } from '../experiment/quantize.ts';
import type { RunInputs, RunOptions } from '../experiment/types.ts';
import { groupKey, type PreparedGroup, type SchemeSource } from '../pipeline/prepare.ts';
import { runPipeline, type GroupSource } from '../pipeline/run.ts';
import type { Evaluate, Evaluation, SearchLayer } from './accuracy-control.ts';

export interface PipelineEvaluator {
  evaluate: Evaluate;
  /** the FP32 model's results on both image sets */
  reference: { validate: Evaluation; rank: Evaluation };
  /** every weight layer with its parameter count and bits under the base config */
  layers: SearchLayer[];
}

/** Prepares the base config's groups once and returns its evaluator (see module header). */
export async function pipelineEvaluator(
  inputs: RunInputs,
  base: ExperimentConfig,
  opts: {
    rankImages?: number;
    signal?: AbortSignal;
    /** the imported scheme the configs re-simulate (pipeline hook `scheme`) */
    scheme?: SchemeSource;
    onProgress?: RunOptions['onProgress'];
    /** evaluation batch (the browser's small batches let a cancel land soon) */
    evalBatch?: number;
  } = {},
): Promise<PipelineEvaluator> {
  if (base.ptq !== 'none')
    throw new QpError(
      'CONFIG_INVALID',
      'The accuracy-aware search changes weight bits only; start it from a config that rounds weights to nearest (no AdaRound/GPTQ).',
    );
  const rankImages = Math.min(opts.rankImages ?? 128, base.eval);
  const prepared = new Map<string, PreparedGroup>();
  const groups: GroupSource = {
    get: async (configs) => prepared.get(groupKey(configs[0])),
    put: (configs, g) => void prepared.set(groupKey(configs[0]), g),
  };
  const memo = new Map<string, WeightQuant>();
  const run = async (cfg: ExperimentConfig): Promise<Evaluation & { group: PreparedGroup }> => {
    let preds: Int32Array | undefined;
    const [r] = await runPipeline([cfg], inputs, {
      signal: opts.signal,
      onProgress: opts.onProgress,
      evalBatch: opts.evalBatch,
      onQuantized: (q) => void (preds = q.evaluation.preds),
      hooks: { groups, nearestWeights: memo, scheme: opts.scheme },
    });
    return { top1: r.quant.top1, preds: preds!, group: prepared.get(groupKey(cfg))! };
  };
  const forPurpose = (cfg: ExperimentConfig, purpose: 'rank' | 'validate') =>
    purpose === 'rank' ? { ...cfg, eval: rankImages } : cfg;
  const [full, rank] = [await run(base), await run(forPurpose(base, 'rank'))];
  const fp32 = (g: PreparedGroup): Evaluation => ({ top1: g.fp32.top1Hits / g.fp32.n, preds: g.fp32.preds });
  const layers = full.group.points.weights.map((p) => ({
    layer: p.node,
    params: full.group.graph.initializers.get(p.initializer)!.data.length,
    bits: weightBitsOf(p, base) ?? base.wBits,
  }));
  return {
    evaluate: async (cfg, purpose) => {
      const { top1, preds } = await run(forPurpose(cfg, purpose));
      return { top1, preds };
    },
    reference: { validate: fp32(full.group), rank: fp32(rank.group) },
    layers,
  };
}
