/**
 * The first step of the pipeline for one group of configs that share a data split: the
 * crops, the FP32 evaluation, cross-layer equalization when the configs ask for it, the
 * quantization points and the calibration statistics. Everything here is shared by the
 * configs of the group (src/lib/pipeline/run.ts groups them).
 *
 * A group whose configs name an imported scheme (config importedScheme) is prepared on the
 * scheme's graph (the parent as matched, BN folded) and quantization points, and carries
 * the scheme's fixed grids and ranges for the 'imported' observer (the `scheme` option,
 * the pipeline's `hooks.scheme`).
 */
import { QpError, throwIfAborted } from '../util/errors.ts';
import type { ExperimentConfig } from '../config/types.ts';
import { foldBatchNorm } from '../onnx/fold-bn.ts';
import type { Graph } from '../onnx/ir.ts';
import { serializeModel } from '../onnx/model.ts';
import { findQuantPoints, type QuantPoints, ALL_PLACEMENT } from '../onnx/placement.ts';
import { calibrationNeeds } from '../quant/observers.ts';
import type { ActivationStats } from '../quant/types.ts';
import { Eta } from '../experiment/batches.ts';
import { collectActivationStats, DEFAULT_BINS } from '../experiment/calibrate.ts';
import { evaluate, type EvalOutcome } from '../experiment/evaluate.ts';
import { loadSplitCrops, type PipelineTuning } from '../experiment/inputs.ts';
import type { Progress, ProgressFn, RunInputs, Stage } from '../experiment/types.ts';
import { applyCle } from '../corrections/cle-run.ts';
import type { FixedQuant } from '../experiment/quantize.ts';
import type { ImportedScheme } from '../imported/resimulate.ts';
import { NO_IMPORTED_SCHEME } from '../config/names.ts';

/** What the pipeline needs of an imported scheme (imported/resimulate.ts schemeOnParent). */
export type SchemeSource = Pick<ImportedScheme, 'id' | 'graph' | 'points' | 'fixed'>;

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
  /** what reconstruction shares within the group (the FP32 Gram matrices) */
  stageShared: Map<string, unknown>;
  /** the imported scheme's grids and ranges, when the group's configs name one */
  fixed?: FixedQuant;
}

/** What the calibration collects beyond what the configs' observers need. */
export interface ExtraStatistics {
  histogram?: boolean;
  moments?: boolean;
}

export interface PrepareOptions {
  tuning: PipelineTuning;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
  extra?: ExtraStatistics;
  /** the imported scheme the configs name (config importedScheme), if any */
  scheme?: SchemeSource;
}

export function progress(
  onProgress: ProgressFn | undefined,
  stage: Stage,
  eta: Eta,
  done: number,
  total: number,
  message: string,
  count?: Progress['count'],
) {
  onProgress?.({ stage, done, total, etaSeconds: eta.estimate(done, total), message, ...(count ? { count } : {}) });
}

/**
 * What the configs of one group have in common: the data split, the preprocessing, BN
 * folding and the graph equalization produces (the configs' statistics and FP32 outputs are
 * shared).
 */
export function groupKey(c: ExperimentConfig): string {
  return JSON.stringify([
    c.foldBn,
    c.calib,
    c.eval,
    c.seed,
    c.preprocess,
    c.inputSize,
    c.cle,
    ...(c.cle ? [c.cleRelu6, c.cleAbsorb] : []),
    // kept out of the key while "none", so the keys of earlier groups stay as they were
    ...(c.importedScheme !== NO_IMPORTED_SCHEME ? [c.importedScheme] : []),
  ]);
}

/**
 * The scheme a config's group runs on: undefined for a config that names none; throws
 * QpError CONFIG_INVALID when it names one that was not given, or asks for what the
 * imported grids cannot follow (equalization changes the weights; the grids were matched
 * to the BN-folded parent).
 */
export function schemeFor(cfg: ExperimentConfig, scheme: SchemeSource | undefined): SchemeSource | undefined {
  if (cfg.importedScheme === NO_IMPORTED_SCHEME) return undefined;
  if (!scheme || scheme.id !== cfg.importedScheme)
    throw new QpError(
      'CONFIG_INVALID',
      `The settings re-simulate the imported scheme ${cfg.importedScheme.slice(0, 19)}…, but that quantized model is not loaded. Open the quantized model again (with its float parent), or set the imported scheme to "none".`,
    );
  if (cfg.cle || !cfg.foldBn)
    throw new QpError(
      'CONFIG_INVALID',
      `An imported scheme is re-simulated on the parent with BatchNorm folded and without equalization (its grids were made for those weights); turn ${cfg.cle ? 'cross-layer equalization off' : 'BN folding on'}.`,
    );
  return scheme;
}

/** The FP32 graph of a group (BN folded when its configs fold), before equalization. */
export function foldedGraph(base: Graph, cfg: ExperimentConfig): Graph {
  return cfg.foldBn ? foldBatchNorm(base).graph : base;
}

/** Loads the data, runs FP32 and gathers calibration statistics for one group of configs. */
export async function prepareGroup(
  base: Graph,
  configs: ExperimentConfig[],
  inputs: RunInputs,
  opts: PrepareOptions,
): Promise<PreparedGroup> {
  const t0 = performance.now();
  const { tuning } = opts;
  const { engine, model, dataset } = inputs;
  const cfg = configs[0];
  const scheme = schemeFor(cfg, opts.scheme);
  const folded = scheme ? scheme.graph : foldedGraph(base, cfg);

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
  // FP32 is the model as given (folded); equalization only changes what is quantized
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

  let graph = folded;
  if (cfg.cle) {
    progress(opts.onProgress, 'calibrate', new Eta(), 0, 1, 'Cross-layer equalization');
    const cle = await applyCle(engine, folded, calibCrops, model.preprocess, {
      relu6: cfg.cleRelu6,
      absorb: cfg.cleAbsorb,
      batchSize: tuning.fixedBatch ? 1 : tuning.calibBatch,
      signal: opts.signal,
    });
    graph = cle.graph;
  }
  const points = scheme ? scheme.points : findQuantPoints(graph, ALL_PLACEMENT);

  // the observer registry says what each activation observer needs collected
  const needs = calibrationNeeds(configs.map((c) => c.aObserver));
  const histogram = needs.histogram || !!opts.extra?.histogram;
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
      moments: needs.moments || !!opts.extra?.moments,
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
    ...(scheme ? { fixed: scheme.fixed } : {}),
  };
}

/**
 * A prepared group rebuilt from what was kept of an earlier one (the estimate's stored
 * statistics): the graph, points and crops are rebuilt (crops from the crop cache), FP32
 * outputs and calibration statistics are not recomputed. Undefined when the stored
 * statistics do not fit these images or this graph (then the group is prepared anew).
 */
export async function rebuildGroup(
  base: Graph,
  cfg: ExperimentConfig,
  inputs: RunInputs,
  kept: { stats: Map<string, ActivationStats>; fp32: EvalOutcome; skipped: number },
  signal?: AbortSignal,
): Promise<PreparedGroup | undefined> {
  // equalization changes the graph the statistics belong to and needs the engine, and an
  // imported scheme brings its own graph and points: prepare anew
  if (cfg.cle || cfg.importedScheme !== NO_IMPORTED_SCHEME) return undefined;
  const graph = foldedGraph(base, cfg);
  const points = findQuantPoints(graph, ALL_PLACEMENT);
  const { calibCrops, evalCrops, evalLabels } = await loadSplitCrops(inputs, cfg, { signal });
  const { stats, fp32, skipped } = kept;
  if (evalCrops.length !== fp32.n || points.activations.some((p) => !stats.has(p.tensor))) return undefined;
  return {
    graph,
    points,
    calibCrops,
    evalCrops,
    evalLabels,
    skipped,
    fp32,
    stats,
    seconds: 0,
    uncorrected: new Map(),
    stageShared: new Map(),
  };
}
