/**
 * Inputs and options of the experiment pipeline. The result and progress shapes live in
 * protocol/results.ts and are re-exported here.
 */
import type { ExperimentConfig } from '../protocol/config.ts';
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
  /** how configs with `cle` treat ReLU6 (src/lib/analysis/cle.ts); default 'relu' */
  cleRelu6?: 'relu' | 'keep';
}

/**
 * Implemented in src/lib/pipeline/run.ts: runs every config, sharing the FP32
 * evaluation and the calibration statistics between configs of one model and dataset.
 */
export type RunExperiments = (
  configs: ExperimentConfig[],
  inputs: RunInputs,
  opts?: RunOptions,
) => Promise<ExperimentResult[]>;
