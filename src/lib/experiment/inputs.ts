/**
 * What every run starts from, as building blocks of the pipeline (src/lib/pipeline): the
 * batch tuning, the model's input as the graph declares it, and the seeded
 * calibration/evaluation crops of a config's split.
 */
import { QpError } from '../util/errors.ts';
import type { ExperimentConfig } from '../config/types.ts';
import { prepareCrops } from '../data/crops.ts';
import { EFFICIENTNET_LITE_SPEC, TORCHVISION_SPEC } from '../data/preprocess.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { PreprocessChoice } from '../config/names.ts';
import { sampleSplits } from '../data/dataset.ts';
import type { Graph } from '../onnx/ir.ts';
import { validateClassifier } from '../models/validate.ts';
import type { RunInputs } from './types.ts';

export interface PipelineTuning {
  evalBatch: number;
  calibBatch: number;
  histBatch: number;
  /** the graph only accepts batch 1: calibration batches are fed image by image */
  fixedBatch?: boolean;
  /**
   * evaluate the fake-quant graph with activation scales folded into the convolutions
   * (onnx/fold-fq-scales.ts), which is faster. Off by default: last-bit differences flip
   * rounding ties and change some top-1 decisions, and runs, shared links and exports promise
   * the bit-exact simulation (docs/performance.md, "The fake-quant forms").
   */
  foldScales?: boolean;
}

/**
 * Batch sizes: 32 matches MQBench's calibration batches. The histogram pass fetches whole
 * activations, so it goes smaller: 8 was clearly faster than 4, and 16 only a little faster
 * than 8 while doubling the memory held by fetched activations (docs/performance.md,
 * "Histogram calibration").
 */
export const DEFAULT_TUNING: PipelineTuning = { evalBatch: 32, calibBatch: 32, histBatch: 8 };

/** The tuning with RunOptions.evalBatch applied (a positive whole number), or as it is. */
export function withEvalBatch(tuning: PipelineTuning, evalBatch: number | undefined): PipelineTuning {
  if (evalBatch === undefined) return tuning;
  if (!Number.isInteger(evalBatch) || evalBatch < 1)
    throw new QpError('ARG_INVALID', `The evaluation batch must be a positive whole number, got ${evalBatch}.`);
  return { ...tuning, evalBatch };
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

const NAMED_PREPROCESS: Record<Exclude<PreprocessChoice, 'model'>, PreprocessSpec> = {
  torchvision: TORCHVISION_SPEC,
  'efficientnet-lite': EFFICIENTNET_LITE_SPEC,
};

/**
 * The inputs with the config's choices about the model applied: its preprocessing ('model'
 * keeps the model's own) and the input size of a graph whose height and width are symbolic
 * (0 keeps what the model says).
 */
export function withConfigModel(inputs: RunInputs, cfg: ExperimentConfig): RunInputs {
  const preprocess = cfg.preprocess === 'model' ? inputs.model.preprocess : NAMED_PREPROCESS[cfg.preprocess];
  const inputSize = cfg.inputSize > 0 ? cfg.inputSize : inputs.model.inputSize;
  return { ...inputs, model: { ...inputs.model, preprocess, ...(inputSize ? { inputSize } : {}) } };
}
