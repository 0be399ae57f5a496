/**
 * Inputs and options of the experiment pipeline. The result and progress shapes live in
 * protocol/results.ts and are re-exported here.
 */
import type { ExperimentConfig } from '../config/types.ts';
import type { ExperimentResult, ProgressFn } from '../protocol/results.ts';
import type { CropStore, Dataset } from '../data/types.ts';
import type { Engine } from '../engine/types.ts';
import type { ModelSpec } from '../models/types.ts';

export type { Accuracy, ExperimentResult, Stage, Progress, ProgressFn } from '../protocol/results.ts';
export type { ModelSpec } from '../models/types.ts';

export interface RunInputs {
  engine: Engine;
  modelBytes: Uint8Array;
  model: ModelSpec;
  dataset: Dataset;
  /** cache of preprocessed crops (disk in Node, IndexedDB in the browser) */
  cropStore?: CropStore;
  /** decode + preprocess off this thread (the browser's decode worker pool) */
  cropper?: import('../data/crops.ts').Cropper;
}

export interface RunOptions {
  signal?: AbortSignal;
  onProgress?: ProgressFn;
  /**
   * Also analyse each config (per-layer error, BN drift, weight-only vs activation-only):
   * `true` or the number of analysis images (default 64, from the start of the evaluation
   * split). Does not change the run's accuracy numbers.
   */
  analyze?: boolean | { images?: number };
  /**
   * images per evaluation batch (default 32). Results do not depend on it; a smaller batch
   * lets a cancel stop at a batch boundary sooner (the browser uses 16).
   */
  evalBatch?: number;
  /**
   * Called once per config after its quantized evaluation with what was simulated (the
   * export in src/lib/export builds deployable files from it). Awaited; a throw fails the run.
   */
  onQuantized?: (run: QuantizedRun) => void | Promise<void>;
  /** called as each config finishes (before the others run), e.g. to append it to a file */
  onResult?: (r: ExperimentResult) => void | Promise<void>;
}

/**
 * One config's simulated quantization, as evaluated: the FP32 graph the points were found
 * on, the evaluated fake-quant graph (its weights and biases are the final ones: fixes and
 * any other weight-changing stage included), and the quantizer parameters used.
 */
export interface QuantizedRun {
  config: ExperimentConfig;
  graph: import('../onnx/ir.ts').Graph;
  evaluated: import('../onnx/ir.ts').Graph;
  weights: import('./quantize.ts').WeightQuant[];
  activations: import('./quantize.ts').ActivationQuant[];
  /** the evaluation the reported accuracy comes from (shared arrays: do not modify) */
  evaluation: {
    crops: Uint8Array[];
    labels: number[];
    preds: Int32Array;
    spec: import('../data/types.ts').PreprocessSpec;
  };
}
