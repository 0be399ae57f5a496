/**
 * The experiment pipeline, shared by the CLI and the browser worker, as stages:
 * prepare (parse → fold BN → pick quantization points → FP32 evaluation → calibration
 * statistics) → quantize (observers) → build graph (fake-quant, plus an optional fix
 * stage) → evaluate (plus an optional analyze stage). Fixes and analysis are
 * PipelineStages given by a higher layer (src/lib/pipeline wires in src/lib/analysis).
 *
 * A sweep (several configs) does the FP32 evaluation and the calibration statistics
 * once per (foldBn, calib, eval, seed) group and reuses them; weight quantization is
 * reused across configs that quantize weights the same way.
 */
import { QpError, throwIfAborted } from '../util/errors.ts';
import type { ExperimentConfig, PlacementRules } from '../config/types.ts';
import { prepareCrops } from '../data/crops.ts';
import { sampleSplits } from '../data/dataset.ts';
import type { Engine, SessionOptions } from '../engine/types.ts';
import { foldFakeQuantScales } from '../onnx/fold-fq-scales.ts';
import { fakeQuantAsQdq, QDQ_SESSION_CONFIG } from '../onnx/fq-qdq.ts';
import { foldBatchNorm } from '../onnx/fold-bn.ts';
import { insertFakeQuant } from '../onnx/fake-quant.ts';
import type { Graph } from '../onnx/ir.ts';
import { parseModel, serializeModel } from '../onnx/model.ts';
import { findQuantPoints, type QuantPoints } from '../onnx/placement.ts';
import { validateClassifier } from '../models/validate.ts';
import { calibrationNeeds } from '../quant/observers.ts';
import type { ActivationStats } from '../quant/types.ts';
import type { FixReport, LayerAnalysis, ModelAnalysis } from '../protocol/analysis.ts';
import type { PtqReport } from '../protocol/ptq.ts';
import { Eta } from './batches.ts';
import { collectActivationStats, DEFAULT_BINS } from './calibrate.ts';
import { configHash } from '../config/hash.ts';
import { evaluate, toAccuracy, type EvalOutcome } from './evaluate.ts';
import { agreement } from '../quant/metrics.ts';
import { quantKey, quantizeActivations, quantizeWeights, weightKey, type WeightQuant } from './quantize.ts';
import type { ExperimentResult, ProgressFn, RunInputs, RunOptions, Stage } from './types.ts';
import type { PipelineStages, StageContext } from './stages.ts';

export interface PipelineTuning {
  evalBatch: number;
  calibBatch: number;
  histBatch: number;
  /** the graph only accepts batch 1: calibration batches are fed image by image */
  fixedBatch?: boolean;
  /**
   * evaluate the fake-quant graph with activation scales folded into the convolutions
   * (onnx/fold-fq-scales.ts: measured 1.05× instead of 1.35× FP32 evaluation). Off by default:
   * last-bit differences flip rounding ties and add up (4 of 128 MobileNet-V2 top-1 decisions
   * changed), and runs, shared links and exports promise the bit-exact simulation.
   */
  foldScales?: boolean;
}

/**
 * The fake-quant graph as evaluated: bit-exact QuantizeLinear → DequantizeLinear pairs on
 * the CPU engines (onnx/fq-qdq.ts, two passes instead of four), the element-wise form on
 * WebGPU (its Q/DQ kernels are not verified to round the same way), or the folded scales
 * when the tuning asks for them.
 */
export function evaluationModel(
  engine: Engine,
  fq: Graph,
  tuning: Pick<PipelineTuning, 'foldScales'>,
): { bytes: Uint8Array; options: SessionOptions } {
  if (tuning.foldScales) return { bytes: serializeModel(foldFakeQuantScales(fq).graph), options: {} };
  if (engine.kind === 'webgpu') return { bytes: serializeModel(fq), options: {} };
  return { bytes: serializeModel(fakeQuantAsQdq(fq).graph), options: { config: QDQ_SESSION_CONFIG } };
}

/**
 * Batch sizes: 32 matches MQBench's calibration batches. The histogram pass fetches whole
 * activations, so it goes smaller. Since min/max are reduced in the graph, 8 measured
 * 1.82x one FP32 pass against 2.32x for 4 and 1.56x for 16 (wasm, MobileNet-V2, 64 images,
 * median of 3, heavy load); 16 doubles the memory held by fetched activations.
 */
export const DEFAULT_TUNING: PipelineTuning = { evalBatch: 32, calibBatch: 32, histBatch: 8 };

/** The tuning with RunOptions.evalBatch applied (a positive whole number), or as it is. */
export function withEvalBatch(tuning: PipelineTuning, evalBatch: number | undefined): PipelineTuning {
  if (evalBatch === undefined) return tuning;
  if (!Number.isInteger(evalBatch) || evalBatch < 1)
    throw new QpError('ARG_INVALID', `The evaluation batch must be a positive whole number, got ${evalBatch}.`);
  return { ...tuning, evalBatch };
}

/** Everything a group of configs with the same data split shares. */
export interface PreparedGroup {
  graph: Graph;
  points: QuantPoints;
  calibCrops: Uint8Array[];
  evalCrops: Uint8Array[];
  evalLabels: number[];
  skipped: number;
  fp32: EvalOutcome;
  stats: Map<string, ActivationStats>;
  seconds: number;
  /**
   * Evaluations of uncorrected fake-quant models by quantKey, so configs that differ only
   * in their fixes evaluate the shared "before fixes" model once.
   */
  uncorrected: Map<string, EvalOutcome>;
  /** what weight stages share within the group (WeightContext.shared) */
  stageShared: Map<string, unknown>;
}

const ALL_PLACEMENT: PlacementRules = { conv: true, gemm: true, add: true, pool: true, concat: true, modelInput: true };

function progress(
  onProgress: ProgressFn | undefined,
  stage: Stage,
  eta: Eta,
  done: number,
  total: number,
  message: string,
) {
  onProgress?.({ stage, done, total, etaSeconds: eta.estimate(done, total), message });
}

function groupKey(c: ExperimentConfig): string {
  return JSON.stringify([c.foldBn, c.calib, c.eval, c.seed, !!c.cle]);
}

/**
 * The seeded calibration and evaluation crops of a config's split (decoded, or from the crop
 * cache), in split order; unreadable images are left out and counted in `skipped`.
 */
export async function loadSplitCrops(
  inputs: Pick<RunInputs, 'dataset' | 'model' | 'cropStore' | 'cropper'>,
  cfg: ExperimentConfig,
  opts: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
): Promise<{ calibCrops: Uint8Array[]; evalCrops: Uint8Array[]; evalLabels: number[]; skipped: unknown[] }> {
  const { dataset, model } = inputs;
  const split = sampleSplits(dataset.items.length, cfg.calib, cfg.eval, cfg.seed);
  const wanted = [...split.calib, ...split.eval].map((i) => dataset.items[i]);
  const { crops, skipped } = await prepareCrops(wanted, model.preprocess, inputs.cropStore, {
    signal: opts.signal,
    namespace: dataset.cacheNamespace,
    cropper: inputs.cropper,
    onProgress: opts.onProgress,
  });
  const calibCrops: Uint8Array[] = [];
  const evalCrops: Uint8Array[] = [];
  const evalLabels: number[] = [];
  crops.forEach((c, i) => {
    if (!c) return;
    if (i < split.calib.length) calibCrops.push(c);
    else {
      evalCrops.push(c);
      evalLabels.push(wanted[i].label);
    }
  });
  return { calibCrops, evalCrops, evalLabels, skipped };
}

/** Stage prepare: loads data, runs FP32 and gathers calibration statistics for one group of configs. */
export async function prepareGroup(
  base: Graph,
  configs: ExperimentConfig[],
  inputs: RunInputs,
  opts: PipelineOptions,
): Promise<PreparedGroup> {
  const t0 = performance.now();
  const tuning = opts.tuning ?? DEFAULT_TUNING;
  const { engine, model, dataset } = inputs;
  const cfg = configs[0];
  const folded = cfg.foldBn ? foldBatchNorm(base).graph : base;

  if (dataset.items.length === 0) {
    throw new QpError(
      'DATA_EMPTY',
      `The data set "${dataset.name}" holds no images, so there is nothing to calibrate or evaluate. Add JPEG images named after their class (e.g. n01440764.JPEG).`,
    );
  }
  let eta = new Eta();
  const { calibCrops, evalCrops, evalLabels, skipped } = await loadSplitCrops(inputs, cfg, {
    signal: opts.signal,
    onProgress: (d, t) => progress(opts.onProgress, 'decode', eta, d, t, `Decoding images ${d}/${t}`),
  });
  if (evalCrops.length === 0)
    throw new QpError(
      'DATA_EMPTY',
      'None of the evaluation images could be read, so nothing can be evaluated. Check that the data folder contains JPEG images.',
    );
  if (calibCrops.length === 0)
    throw new QpError(
      'DATA_EMPTY',
      'None of the calibration images could be read. Check that the data folder contains JPEG images.',
    );

  throwIfAborted(opts.signal);
  eta = new Eta();
  // FP32 is the model as given (folded); CLE only changes what is quantized
  const fpSession = await engine.createSession(serializeModel(folded));
  let fp32: EvalOutcome;
  try {
    fp32 = await evaluate(fpSession, evalCrops, evalLabels, model.preprocess, {
      batchSize: tuning.evalBatch,
      signal: opts.signal,
      onBatch: (d, t) => progress(opts.onProgress, 'fp32', eta, d, t, `FP32 evaluation ${d}/${t}`),
    });
  } finally {
    await fpSession.release();
  }

  // a transform stage (cross-layer equalization) changes what is quantized, not the FP32 reference
  let graph = folded;
  const transform = opts.stages?.transform;
  if (transform?.wanted(cfg)) {
    progress(opts.onProgress, 'calibrate', new Eta(), 0, 1, transform.label);
    graph = (
      await transform.apply(
        {
          engine,
          graph: folded,
          spec: model.preprocess,
          calibCrops,
          batchSize: tuning.fixedBatch ? 1 : tuning.calibBatch,
          signal: opts.signal,
          cleRelu6: opts.cleRelu6,
          cleAbsorb: opts.cleAbsorb,
        },
        cfg,
      )
    ).graph;
  } else if (cfg.cle) {
    throw new QpError(
      'CONFIG_INVALID',
      'This build of the pipeline cannot apply cross-layer equalization (cle); run it through the full pipeline (src/lib/pipeline).',
    );
  }
  const points = findQuantPoints(graph, ALL_PLACEMENT);

  // the observer registry says what each activation observer needs collected
  const { histogram, moments } = calibrationNeeds(configs.map((c) => c.aObserver));
  eta = new Eta();
  const stats = await collectActivationStats(
    engine,
    graph,
    points.activations.map((p) => p.tensor),
    calibCrops,
    model.preprocess,
    {
      batchSize: tuning.calibBatch,
      feedBatchSize: tuning.fixedBatch ? 1 : undefined,
      histBatchSize: tuning.histBatch,
      histogram,
      moments,
      bins: DEFAULT_BINS,
      signal: opts.signal,
      onProgress: (pass, d, t) => {
        // the two-pass form reports both passes as one stage of 2t steps
        const twoPass = pass !== 'both' && histogram;
        const done = pass === 2 ? t + d : d;
        const what = pass === 'both' ? 'statistics and histograms' : pass === 1 ? 'statistics' : 'histograms';
        progress(opts.onProgress, 'calibrate', eta, done, twoPass ? 2 * t : t, `Calibration ${what} ${d}/${t}`);
      },
    },
  );
  return {
    graph,
    points,
    calibCrops,
    evalCrops,
    evalLabels,
    skipped: skipped.length,
    fp32,
    stats,
    seconds: (performance.now() - t0) / 1000,
    uncorrected: new Map(),
    stageShared: new Map(),
  };
}

/** Options of the pipeline functions: RunOptions plus batch tuning and the plugged-in stages. */
export type PipelineOptions = RunOptions & { tuning?: PipelineTuning; stages?: PipelineStages };

/**
 * Throws INTERNAL before any work when a config asks for a fix, or the options for an
 * analysis, that no plugged-in stage provides (a caller bypassing src/lib/pipeline).
 */
function requireStages(configs: ExperimentConfig[], opts: PipelineOptions): void {
  const stages = opts.stages ?? {};
  for (const cfg of configs) {
    if ((cfg.biasCorrection || cfg.bnReestimate) && !stages.fix?.wanted(cfg)) {
      throw new QpError(
        'INTERNAL',
        'This config asks for bias correction or BN re-estimation, but the pipeline was started without the fix stage. Run it through src/lib/pipeline/run.ts, which plugs the fixes in.',
      );
    }
  }
  for (const cfg of configs) {
    if (cfg.ptq !== 'none' && !stages.weights?.wanted(cfg)) {
      throw new QpError(
        'INTERNAL',
        `This config asks for ${cfg.ptq} weight rounding, but the pipeline was started without the reconstruction stage. Run it through src/lib/pipeline/run.ts, which plugs it in.`,
      );
    }
  }
  if (opts.analyze && !stages.analyze) {
    throw new QpError(
      'INTERNAL',
      'Analysis was requested, but the pipeline was started without the analysis stage. Run it through src/lib/pipeline/run.ts, which plugs the analysis in.',
    );
  }
}

/**
 * Builds the fake-quant graph of one config and evaluates it. When the config asks for a
 * fix (biasCorrection / bnReestimate) the fix stage corrects the graph on the calibration
 * images and the uncorrected model is evaluated too (`beforeFixes`); with opts.analyze
 * the analyze stage analyses the evaluated model per layer, which does not change its
 * numbers. Throws INTERNAL when a needed stage was not plugged in.
 */
export async function runConfig(
  engine: Engine,
  group: PreparedGroup,
  cfg: ExperimentConfig,
  inputs: RunInputs,
  weights: WeightQuant[],
  opts: PipelineOptions,
): Promise<Omit<ExperimentResult, 'configHash' | 'seconds' | 'createdAt'>> {
  const tuning = opts.tuning ?? DEFAULT_TUNING;
  // stage: quantize (weights were quantized by the caller, shared across configs)
  const acts = quantizeActivations(group.points, group.stats, cfg);
  // stage: build graph
  const fq = insertFakeQuant(group.graph, {
    weights: new Map(weights.map((w) => [w.point.initializer, w.values])),
    activations: new Map(acts.map((a) => [a.point.tensor, a.qparams])),
  });
  const spec = inputs.model.preprocess;
  const run = async (graph: Graph, label: string): Promise<EvalOutcome> => {
    // opens the stage, so session creation counts as evaluation (experiment/stage-timer.ts)
    progress(opts.onProgress, 'evaluate', new Eta(), 0, group.evalCrops.length, `${label} 0/${group.evalCrops.length}`);
    const m = evaluationModel(engine, graph, tuning);
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
  const stages = opts.stages ?? {};
  const ctx = (onProgress: StageContext['onProgress']): StageContext => ({
    engine,
    graph: group.graph,
    points: group.points,
    weights,
    activations: acts,
    spec,
    calibCrops: group.calibCrops,
    evalCrops: group.evalCrops,
    evalLabels: group.evalLabels,
    fixedBatch: !!tuning.fixedBatch,
    calibBatch: tuning.calibBatch,
    evalBatch: tuning.evalBatch,
    signal: opts.signal,
    onProgress,
  });
  // optional fix stage: corrects the fake-quant graph
  let corrected: { graph: Graph; report: FixReport } | undefined;
  requireStages([cfg], opts);
  if (stages.fix && (cfg.biasCorrection || cfg.bnReestimate)) {
    const eta = new Eta();
    corrected = await stages.fix.apply(
      ctx((m, d, t) => progress(opts.onProgress, 'quantize', eta, d, t, `Fixes: ${m}`)),
      cfg,
    );
  }
  // stage: evaluate
  const key = quantKey(cfg);
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
  // optional analyze stage: per-layer analysis of the evaluated model
  let analysis: { layers: LayerAnalysis[]; analysis: ModelAnalysis } | undefined;
  if (stages.analyze && opts.analyze) {
    const n = typeof opts.analyze === 'object' && opts.analyze.images ? opts.analyze.images : 64;
    const eta = new Eta();
    analysis = await stages.analyze.run(
      ctx((m, d, t) => progress(opts.onProgress, 'analyze', eta, d, t, m)),
      n,
      corrected?.graph,
    );
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

/**
 * Checks that the graph is an image classifier and adapts the model's preprocessing to
 * what the graph declares (layout, input size; `model.inputSize` when the graph's size is
 * symbolic, else MODEL_INPUT_SIZE_UNKNOWN). Models with a fixed batch of 1 are
 * evaluated one image at a time. Throws the validator's QpError for unusable models.
 */
export function resolveModelInput(
  graph: Graph,
  inputs: RunInputs,
  tuning: PipelineTuning,
): { inputs: RunInputs; tuning: PipelineTuning } {
  const info = validateClassifier(graph, { labels: inputs.dataset.classes, inputSize: inputs.model.inputSize });
  const spec = inputs.model.preprocess;
  const preprocess = {
    ...spec,
    layout: info.layout,
    crop: info.size,
    // keep the model's crop fraction (e.g. 224/256) when its size differs from the spec's
    resizeShorter:
      info.size === spec.crop ? spec.resizeShorter : Math.round((info.size * spec.resizeShorter) / spec.crop),
  };
  const fixed = typeof info.batch === 'number' ? info.batch : undefined;
  if (fixed !== undefined && fixed !== 1) {
    throw new QpError(
      'MODEL_UNSUPPORTED',
      `The model's batch size is fixed at ${fixed}; only a dynamic batch or a batch of 1 can be evaluated. Export it with a dynamic batch axis.`,
    );
  }
  return {
    inputs: { ...inputs, model: { ...inputs.model, preprocess, classes: info.classes } },
    tuning: fixed === 1 ? { evalBatch: 1, calibBatch: tuning.calibBatch, histBatch: 1, fixedBatch: true } : tuning,
  };
}

/**
 * Round-to-nearest weights of a config, replaced by the weight stage's (AdaRound / GPTQ)
 * when the config asks, with its report; its progress goes to the 'quantize' stage.
 */
export async function configWeights(
  engine: Engine,
  group: PreparedGroup,
  cfg: ExperimentConfig,
  inputs: RunInputs,
  opts: PipelineOptions,
): Promise<{ weights: WeightQuant[]; ptq?: PtqReport }> {
  const rtn = quantizeWeights(group.graph, group.points, cfg);
  const stage = opts.stages?.weights;
  if (!stage?.wanted(cfg)) return { weights: rtn };
  const eta = new Eta();
  const { weights, report } = await stage.apply(
    {
      engine,
      graph: group.graph,
      points: group.points,
      weights: rtn,
      activations: quantizeActivations(group.points, group.stats, cfg),
      spec: inputs.model.preprocess,
      calibCrops: group.calibCrops,
      batchSize: opts.tuning?.fixedBatch ? 1 : 4,
      shared: group.stageShared,
      signal: opts.signal,
      onProgress: (m, d, t) => progress(opts.onProgress, 'quantize', eta, d, t, m),
    },
    cfg,
  );
  return { weights, ptq: report };
}

/**
 * Runs every config, sharing the FP32 evaluation and the calibration statistics within
 * a group. `runOpts.stages` plugs in fixes and analysis; src/lib/pipeline/run.ts is the
 * runExperiments with those stages that the CLI and the worker use.
 */
export async function runPipeline(
  configs: ExperimentConfig[],
  rawInputs: RunInputs,
  runOpts: PipelineOptions = {},
): Promise<ExperimentResult[]> {
  requireStages(configs, runOpts);
  const base = parseModel(rawInputs.modelBytes);
  const { inputs, tuning } = resolveModelInput(
    base,
    rawInputs,
    withEvalBatch(runOpts.tuning ?? DEFAULT_TUNING, runOpts.evalBatch),
  );
  const opts = { ...runOpts, tuning };
  const groups = new Map<string, ExperimentConfig[]>();
  for (const c of configs) {
    const k = groupKey(c);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(c);
  }
  const results = new Map<ExperimentConfig, ExperimentResult>();
  for (const group of groups.values()) {
    const prepared = await prepareGroup(base, group, inputs, opts);
    const shared = prepared.seconds / group.length;
    const weightCache = new Map<string, { weights: WeightQuant[]; ptq?: PtqReport }>();
    for (const cfg of group) {
      throwIfAborted(opts.signal);
      const t0 = performance.now();
      opts.onProgress?.({
        stage: 'quantize',
        done: 0,
        total: 1,
        message: `Quantizing weights for ${cfg.backend} W${cfg.wBits}A${cfg.aBits}`,
      });
      const wk = weightKey(cfg);
      if (!weightCache.has(wk)) weightCache.set(wk, await configWeights(inputs.engine, prepared, cfg, inputs, opts));
      const { weights, ptq } = weightCache.get(wk)!;
      const r = await runConfig(inputs.engine, prepared, cfg, inputs, weights, opts);
      const result: ExperimentResult = {
        ...r,
        ...(ptq ? { ptq } : {}),
        configHash: await configHash(cfg),
        seconds: shared + (performance.now() - t0) / 1000,
        createdAt: new Date().toISOString(),
      };
      results.set(cfg, result);
      await opts.onResult?.(result);
    }
  }
  return configs.map((c) => results.get(c)!);
}
