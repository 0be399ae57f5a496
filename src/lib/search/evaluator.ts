/**
 * A real `evaluate(config, purpose)` for the searches, until the pipeline offers one: the
 * pipeline's prepare stage once (BN folding, quantization points, FP32 evaluation,
 * calibration statistics), then per config round-to-nearest weights (memoized per layer),
 * activation quantizers, the fake-quant graph and its evaluation, exactly as a run of that
 * config computes them. 'rank' uses the first `rankImages` evaluation images, 'validate'
 * all of them. Configs must share the base config's data split and must not ask for stages
 * (fixes, AdaRound/GPTQ, CLE): the search changes weight bits only.
 */
import { QpError } from '../util/errors.ts';
import type { ExperimentConfig } from '../config/types.ts';
import type { Engine } from '../engine/types.ts';
import { evaluate } from '../experiment/evaluate.ts';
import { quantizeActivations, quantizeWeights, weightBitsOf, type WeightQuant } from '../experiment/quantize.ts';
import {
  DEFAULT_TUNING,
  evaluationModel,
  prepareGroup,
  resolveModelInput,
  type PreparedGroup,
} from '../experiment/run.ts';
import type { RunInputs } from '../experiment/types.ts';
import { insertFakeQuant } from '../onnx/fake-quant.ts';
import { parseModel } from '../onnx/model.ts';
import type { Evaluate, Evaluation, SearchLayer } from './accuracy-control.ts';

export interface PipelineEvaluator {
  evaluate: Evaluate;
  /** the FP32 model's results on both image sets */
  reference: { validate: Evaluation; rank: Evaluation };
  /** every weight layer with its parameter count and bits under the base config */
  layers: SearchLayer[];
  group: PreparedGroup;
}

/** Prepares the base config's data once and returns its evaluator (see module header). */
export async function pipelineEvaluator(
  inputs: RunInputs,
  base: ExperimentConfig,
  opts: { rankImages?: number; signal?: AbortSignal } = {},
): Promise<PipelineEvaluator> {
  if (base.biasCorrection || base.bnReestimate || base.cle || base.ptq !== 'none')
    throw new QpError(
      'CONFIG_INVALID',
      'The accuracy-aware search changes weight bits only; start it from a config without fixes, cross-layer equalization or AdaRound/GPTQ.',
    );
  const parsed = parseModel(inputs.modelBytes);
  const { inputs: resolved, tuning } = resolveModelInput(parsed, inputs, DEFAULT_TUNING);
  const group = await prepareGroup(parsed, [base], resolved, { tuning, signal: opts.signal });
  const engine: Engine = inputs.engine;
  const spec = resolved.model.preprocess;
  const rankN = Math.min(opts.rankImages ?? 128, group.evalCrops.length);
  const memo = new Map<string, WeightQuant>();
  const evaluateConfig: Evaluate = async (cfg, purpose) => {
    const weights = quantizeWeights(group.graph, group.points, cfg, memo);
    const acts = quantizeActivations(group.points, group.stats, cfg);
    const fq = insertFakeQuant(group.graph, {
      weights: new Map(weights.map((w) => [w.point.initializer, w.values])),
      activations: new Map(acts.map((a) => [a.point.tensor, a.qparams])),
    });
    const m = evaluationModel(engine, fq, tuning);
    const session = await engine.createSession(m.bytes, m.options);
    try {
      const n = purpose === 'rank' ? rankN : group.evalCrops.length;
      const o = await evaluate(session, group.evalCrops.slice(0, n), group.evalLabels.slice(0, n), spec, {
        batchSize: tuning.evalBatch,
        signal: opts.signal,
      });
      return { top1: o.top1Hits / o.n, preds: o.preds };
    } finally {
      await session.release();
    }
  };
  const fp = group.fp32;
  let rankHits = 0;
  for (let i = 0; i < rankN; i++) if (fp.preds[i] === group.evalLabels[i]) rankHits++;
  const layers = group.points.weights.map((p) => ({
    layer: p.node,
    params: group.graph.initializers.get(p.initializer)!.data.length,
    bits: weightBitsOf(p, base) ?? base.wBits,
  }));
  return {
    evaluate: evaluateConfig,
    reference: {
      validate: { top1: fp.top1Hits / fp.n, preds: fp.preds },
      rank: { top1: rankHits / rankN, preds: fp.preds.slice(0, rankN) },
    },
    layers,
    group,
  };
}
