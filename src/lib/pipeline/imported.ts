/**
 * Runs of an imported quantized model, on the data split of a config, for every caller (the
 * CLI; the worker once the app opens quantized models):
 * - as it is: the file's own bytes in one engine session (imported/evaluate.ts), on the
 *   config's evaluation images;
 * - against its float parent: the imported scheme re-simulated on the parent through the one
 *   pipeline loop (hook `scheme`), which also gives the parent's FP32 outputs on the same
 *   images (hence the agreement of the file with its parent), and the per-layer comparison
 *   (imported/compare.ts) on the first analysis images.
 * Nothing here repeats a pipeline step: the re-simulation is a normal run of its config.
 */
import { throwIfAborted } from '../util/errors.ts';
import type { ExperimentConfig } from '../config/types.ts';
import type { Accuracy } from '../protocol/accuracy.ts';
import type { ParentComparison } from '../protocol/imported.ts';
import { toAccuracy, type EvalOutcome } from '../experiment/evaluate.ts';
import { DEFAULT_TUNING, loadSplitCrops, resolveModelInput, withConfigModel } from '../experiment/inputs.ts';
import type { ExperimentResult, ProgressFn, RunInputs } from '../experiment/types.ts';
import { compareWithParent } from '../imported/compare.ts';
import { evaluateAsIs } from '../imported/evaluate.ts';
import type { ImportedPair } from '../imported/pair.ts';
import type { ImportedModel } from '../imported/read.ts';
import { resimulationConfig } from '../imported/resimulate.ts';
import { agreement } from '../quant/metrics.ts';
import type { PreparedGroup } from './prepare.ts';
import { DEFAULT_ANALYSIS_IMAGES, parsedModel, runPipeline } from './run.ts';

export interface AsIsOutcome {
  accuracy: Accuracy;
  preds: Int32Array;
  images: { calib: number; eval: number; skipped: number };
  seconds: number;
}

/**
 * The quantized file of `inputs.modelBytes` evaluated as it is on `cfg`'s evaluation images
 * (the same split a run of `cfg` uses). Throws the engine's and the data's QpErrors.
 */
export async function runAsIs(
  inputs: RunInputs,
  cfg: ExperimentConfig,
  opts: { signal?: AbortSignal; onProgress?: ProgressFn; evalBatch?: number } = {},
): Promise<AsIsOutcome> {
  const t0 = performance.now();
  const graph = parsedModel(inputs.modelBytes);
  const { inputs: ready, tuning } = resolveModelInput(graph, withConfigModel(inputs, cfg), {
    ...DEFAULT_TUNING,
    ...(opts.evalBatch ? { evalBatch: opts.evalBatch } : {}),
  });
  const split = await loadSplitCrops(ready, cfg, {
    signal: opts.signal,
    onProgress: (done, total) =>
      opts.onProgress?.({ stage: 'decode', done, total, message: `Decoding images ${done}/${total}` }),
  });
  throwIfAborted(opts.signal);
  const o: EvalOutcome = await evaluateAsIs(ready.engine, inputs.modelBytes, {
    crops: split.evalCrops,
    labels: split.evalLabels,
    spec: ready.model.preprocess,
    batchSize: tuning.evalBatch,
    signal: opts.signal,
    onBatch: (done, total) =>
      opts.onProgress?.({ stage: 'evaluate', done, total, message: `Imported model as it is ${done}/${total}` }),
  });
  return {
    accuracy: toAccuracy(o),
    preds: o.preds,
    images: { calib: split.calibCrops.length, eval: split.evalCrops.length, skipped: split.skipped.length },
    seconds: (performance.now() - t0) / 1000,
  };
}

export interface ParentOutcome {
  /** the parent's FP32 accuracy on the evaluation images */
  fp32: Accuracy;
  /** top-1 agreement of the file (as it is) with the parent */
  agreement: number;
  /** the imported scheme re-simulated on the parent (a normal run of its config) */
  resimulated: ExperimentResult;
  /** top-1 agreement of the re-simulation with the file */
  resimulatedAgreement: number;
  comparison: ParentComparison;
}

/**
 * The imported model against its parent (see module header). `inputs` are the parent's
 * (its bytes and spec), `base` the config whose data split the as-is run used, `asIs` that
 * run's outcome. Throws the pipeline's QpErrors.
 */
export async function runAgainstParent(
  inputs: RunInputs,
  base: ExperimentConfig,
  file: { bytes: Uint8Array; imported: ImportedModel; pair: ImportedPair; asIs: AsIsOutcome },
  opts: { signal?: AbortSignal; onProgress?: ProgressFn; evalBatch?: number; analysisImages?: number } = {},
): Promise<ParentOutcome> {
  const { scheme } = file.pair;
  const cfg = resimulationConfig(scheme, base);
  let group: PreparedGroup | undefined;
  let preds: Int32Array | undefined;
  const [resimulated] = await runPipeline([cfg], inputs, {
    signal: opts.signal,
    onProgress: opts.onProgress,
    evalBatch: opts.evalBatch,
    onQuantized: (q) => void (preds = q.evaluation.preds),
    hooks: {
      scheme,
      groups: { get: async () => undefined, put: (_configs, g) => void (group = g) },
    },
  });
  const g = group!;
  opts.onProgress?.({ stage: 'analyze', done: 0, total: 1, message: 'Comparing the imported model with its parent' });
  const comparison = await compareWithParent({
    engine: inputs.engine,
    fileBytes: file.bytes,
    imported: file.imported,
    match: file.pair.match,
    scheme,
    config: cfg,
    spec: resolveModelInput(parsedModel(inputs.modelBytes), withConfigModel(inputs, cfg), DEFAULT_TUNING).inputs.model
      .preprocess,
    crops: g.evalCrops.slice(0, opts.analysisImages ?? DEFAULT_ANALYSIS_IMAGES),
    evalCrops: g.evalCrops,
    evalLabels: g.evalLabels,
    signal: opts.signal,
  });
  return {
    fp32: resimulated.fp32,
    agreement: agreement(file.asIs.preds, g.fp32.preds),
    resimulated,
    resimulatedAgreement: agreement(file.asIs.preds, preds!),
    comparison,
  };
}
