/**
 * The per-config steps of the pipeline, on a prepared group: the weights (round-to-nearest,
 * or reconstructed by AdaRound / GPTQ when the config asks), the activation quantizers,
 * the fake-quant graph, the fixes (bias correction, BN re-estimation), the evaluation, and
 * the per-layer analysis when asked. Every config option is honoured here, in one place:
 * no caller can skip a step a config asks for. With `deployExact` the evaluated model is the
 * deploy-exact graph (export/deploy-exact.ts: what onnxruntime's integer kernels compute)
 * built from the same weights and quantizers; the analysis still reads the fake-quant model.
 */
import type { ExperimentConfig } from '../config/types.ts';
import type { Engine } from '../engine/types.ts';
import type { Graph } from '../onnx/ir.ts';
import { serializeModel } from '../onnx/model.ts';
import { insertFakeQuant } from '../onnx/fake-quant.ts';
import { agreement } from '../quant/metrics.ts';
import type { FixReport, LayerAnalysis, ModelAnalysis } from '../protocol/analysis.ts';
import type { PtqReport } from '../protocol/ptq.ts';
import { Eta } from '../experiment/batches.ts';
import { evaluate, evaluationModel, toAccuracy, type EvalOutcome } from '../experiment/evaluate.ts';
import type { PipelineTuning } from '../experiment/inputs.ts';
import {
  quantizeActivations,
  quantizeWeights,
  quantKey,
  type ActivationQuant,
  type WeightMemo,
  type WeightQuant,
} from '../experiment/quantize.ts';
import type { ExperimentResult, ProgressFn, QuantizedRun, RunInputs } from '../experiment/types.ts';
import { analyzeQuantization } from '../analysis/analyze.ts';
import type { LayerDetailContext } from '../analysis/detail.ts';
import { applyFixes } from '../corrections/fixes.ts';
import { reconstructConfig } from '../ptq/stage.ts';
import { DEPLOY_EXACT_SESSION, deployExactGraph } from '../export/deploy-exact.ts';
import { progress, type PreparedGroup } from './prepare.ts';

/**
 * A config's weights as evaluated, with the reconstruction's report when it ran, and the
 * activation quantizers with the step sizes it learned (BRECQ, QDrop, AdaRound with learned
 * ranges): the fake-quant graph is then built with those, not with the calibrated ones.
 */
export interface ConfigWeights {
  weights: WeightQuant[];
  ptq?: PtqReport;
  activations?: ActivationQuant[];
}

export interface ConfigRunOptions {
  tuning: PipelineTuning;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
}

/**
 * The weights of `cfg`: round-to-nearest on the observers' grids, replaced by AdaRound's or
 * GPTQ's when the config asks. With `nearest` the reconstruction is skipped and the
 * round-to-nearest layers come from (and go to) that memo (the background estimate, which
 * says so in its answer).
 */
export async function configWeights(
  engine: Engine,
  group: PreparedGroup,
  cfg: ExperimentConfig,
  inputs: RunInputs,
  opts: ConfigRunOptions & { nearest?: WeightMemo },
): Promise<ConfigWeights> {
  const rtn = quantizeWeights(group.graph, group.points, cfg, opts.nearest, group.fixed);
  if (cfg.ptq === 'none' || opts.nearest) return { weights: rtn };
  const eta = new Eta();
  const { weights, report, activations } = await reconstructConfig(
    {
      engine,
      graph: group.graph,
      points: group.points,
      weights: rtn,
      activations: quantizeActivations(group.points, group.stats, cfg, group.fixed),
      spec: inputs.model.preprocess,
      calibCrops: group.calibCrops,
      batchSize: opts.tuning.fixedBatch ? 1 : 4,
      shared: group.stageShared,
      signal: opts.signal,
      onProgress: (m, d, t, count) => progress(opts.onProgress, 'quantize', eta, d, t, m, count),
    },
    cfg,
  );
  return { weights, ptq: report, ...(activations ? { activations } : {}) };
}

export interface RunConfigOptions extends ConfigRunOptions {
  /** analyse the evaluated model per layer on this many evaluation images */
  analyze?: { images: number };
  /** called with what was simulated, after the quantized evaluation */
  onQuantized?: (run: QuantizedRun) => void | Promise<void>;
  /** called with what the layer detail needs, for an analysed config */
  keepContext?: (context: LayerDetailContext) => void;
  /** activation quantizers learned by the reconstruction (ConfigWeights.activations), instead of the calibrated ones */
  activations?: ActivationQuant[];
}

/** A result without the fields the loop adds (hash, time, date). */
export type ConfigOutcome = Omit<ExperimentResult, 'configHash' | 'seconds' | 'createdAt'>;

/**
 * Builds the fake-quant graph of one config and evaluates it. When the config asks for a
 * fix (biasCorrection / bnReestimate) the graph is corrected on the calibration images and
 * the uncorrected model is evaluated too (`beforeFixes`); with `analyze` the evaluated
 * model is analysed per layer, which does not change its numbers.
 */
export async function runConfig(
  engine: Engine,
  group: PreparedGroup,
  cfg: ExperimentConfig,
  inputs: RunInputs,
  weights: WeightQuant[],
  opts: RunConfigOptions,
): Promise<ConfigOutcome> {
  const { tuning } = opts;
  const acts = opts.activations ?? quantizeActivations(group.points, group.stats, cfg, group.fixed);
  const fq = buildFakeQuant(group.graph, weights, acts);
  const spec = inputs.model.preprocess;
  // deployExact: what the integer kernels compute for this config's quantizers, with the final
  // weights and biases read from the simulated graph (fixes included), in the deployment's
  // session options (export/deploy-exact.ts)
  const evaluated = (simulated: Graph) =>
    cfg.deployExact
      ? {
          bytes: serializeModel(
            deployExactGraph({ config: cfg, graph: group.graph, evaluated: simulated, weights, activations: acts })
              .graph,
          ),
          options: DEPLOY_EXACT_SESSION,
        }
      : evaluationModel(engine, simulated, tuning);
  const run = async (simulated: Graph, label: string): Promise<EvalOutcome> => {
    // opens the stage, so session creation counts as evaluation (experiment/stage-timer.ts)
    progress(opts.onProgress, 'evaluate', new Eta(), 0, group.evalCrops.length, `${label} 0/${group.evalCrops.length}`);
    const m = evaluated(simulated);
    const session = await engine.createSession(m.bytes, m.options);
    const eta = new Eta();
    try {
      return await evaluate(session, group.evalCrops, group.evalLabels, spec, {
        batchSize: tuning.evalBatch,
        signal: opts.signal,
        onBatch: (d, t) => progress(opts.onProgress, 'evaluate', eta, d, t, `${label} ${d}/${t}`),
      });
    } finally {
      await session.release();
    }
  };

  let corrected: { graph: Graph; report: FixReport } | undefined;
  if (cfg.biasCorrection || cfg.bnReestimate) {
    const eta = new Eta();
    corrected = await applyFixes(
      {
        engine,
        graph: group.graph,
        points: group.points,
        weights,
        activations: acts,
        crops: group.calibCrops,
        spec,
        batchSize: tuning.fixedBatch ? 1 : tuning.calibBatch,
        signal: opts.signal,
        onProgress: (m, d, t) => progress(opts.onProgress, 'quantize', eta, d, t, `Fixes: ${m}`),
      },
      { biasCorrection: cfg.biasCorrection, bnReestimate: cfg.bnReestimate },
    );
  }

  // the deploy-exact evaluation of the same quantizers is another outcome
  const key = cfg.deployExact ? `${quantKey(cfg)}|deploy-exact` : quantKey(cfg);
  const uncorrected = async (label: string) => {
    let o = group.uncorrected.get(key);
    if (!o) group.uncorrected.set(key, (o = await run(fq, label)));
    return o;
  };
  const q = corrected ? await run(corrected.graph, 'Quantized evaluation') : await uncorrected('Quantized evaluation');
  const before = corrected ? await uncorrected('Evaluation before fixes') : undefined;
  await opts.onQuantized?.({
    config: cfg,
    graph: group.graph,
    evaluated: corrected?.graph ?? fq,
    weights,
    activations: acts,
    evaluation: { crops: group.evalCrops, labels: group.evalLabels, preds: q.preds, spec },
  });

  let analysis: { layers: LayerAnalysis[]; analysis: ModelAnalysis } | undefined;
  if (opts.analyze) {
    const eta = new Eta();
    analysis = await analyzeQuantization({
      engine,
      graph: group.graph,
      points: group.points,
      weights,
      activations: acts,
      quantized: corrected?.graph,
      spec,
      crops: group.evalCrops.slice(0, opts.analyze.images),
      evalCrops: group.evalCrops,
      evalLabels: group.evalLabels,
      batchSize: tuning.fixedBatch ? 1 : 8,
      evalBatch: tuning.evalBatch,
      signal: opts.signal,
      onProgress: (m, d, t) => progress(opts.onProgress, 'analyze', eta, d, t, m),
    });
    opts.keepContext?.({
      engine,
      graph: group.graph,
      points: group.points,
      weights,
      activations: acts,
      stats: group.stats,
      calibCrops: group.calibCrops,
      spec,
    });
  }
  return {
    config: cfg,
    fp32: toAccuracy(group.fp32),
    quant: toAccuracy(q),
    agreement: agreement(group.fp32.preds, q.preds),
    images: { calib: group.calibCrops.length, eval: group.evalCrops.length, skipped: group.skipped },
    engine: engine.description,
    quantPoints: { activations: acts.length, weights: weights.length },
    unquantizedOps: group.points.unquantizedOps,
    ...(before ? { beforeFixes: toAccuracy(before) } : {}),
    ...(corrected ? { fixes: corrected.report } : {}),
    ...(analysis ? { layers: analysis.layers, analysis: analysis.analysis } : {}),
  };
}

/** The fake-quant graph of a config's weights and activation quantizers on the group's graph. */
function buildFakeQuant(graph: Graph, weights: WeightQuant[], acts: ActivationQuant[]): Graph {
  return insertFakeQuant(graph, {
    weights: new Map(weights.map((w) => [w.point.initializer, w.values])),
    activations: new Map(acts.map((a) => [a.point.tensor, a.qparams])),
  });
}
