/**
 * Results and progress of experiments: the shapes the CLI prints, the worker returns,
 * the UI stores and the URL restores. Pure types.
 */
import type { ExperimentConfig } from '../protocol/config.ts';

export interface Accuracy {
  top1: number; // fraction in [0,1]
  top5: number;
  /** 95% Wilson interval of top-1 */
  top1Ci: [number, number];
  top5Ci: [number, number];
}

export interface ExperimentResult {
  config: ExperimentConfig;
  configHash: string;
  fp32: Accuracy;
  quant: Accuracy;
  /** fraction of eval images where quantized top-1 == FP32 top-1 */
  agreement: number;
  images: { calib: number; eval: number; skipped: number };
  /** wall seconds for this configuration (shared FP32/calibration work not counted twice) */
  seconds: number;
  engine: string;
  quantPoints: { activations: number; weights: number };
  /** op types left in float because the quantizer does not know them */
  unquantizedOps: string[];
  /** accuracy before fixes when biasCorrection / bnReestimate were applied */
  beforeFixes?: Accuracy;
  /** what the fixes did, pass by pass (when biasCorrection / bnReestimate were applied) */
  fixes?: import('../analysis/types.ts').FixReport;
  /** per-layer error and BN drift, in network order (RunOptions.analyze) */
  layers?: import('../analysis/types.ts').LayerAnalysis[];
  /** whole-model weight-only / activation-only comparison (RunOptions.analyze) */
  analysis?: import('../analysis/types.ts').ModelAnalysis;
  /** per-layer reconstruction error and rounding flips (config.ptq 'adaround' / 'gptq') */
  ptq?: import('../ptq/types.ts').PtqReport;
  createdAt: string;
}

export type Stage = 'load' | 'decode' | 'fp32' | 'calibrate' | 'quantize' | 'evaluate' | 'analyze';

export interface Progress {
  stage: Stage;
  done: number;
  total: number;
  /** seconds left in this stage, when it can be estimated */
  etaSeconds?: number;
  message: string;
}

export type ProgressFn = (p: Progress) => void;

/** What the pipeline needs to know about a model beyond its bytes. */
export interface ModelSpec {
  /** registry id ('mobilenet-v2', 'resnet18', 'efficientnet-lite0') or 'sha256:<hex>' */
  id: string;
  label: string;
  /** preprocessing the weights were trained with */
  preprocess: import('../data/types.ts').PreprocessSpec;
  /** number of classes the classifier outputs (1000 for ImageNet) */
  classes: number;
  /**
   * Square input size in pixels to use when the graph leaves height/width symbolic (the
   * user's answer to MODEL_INPUT_SIZE_UNKNOWN). Ignored when the graph fixes its size.
   */
  inputSize?: number;
}

export interface RunInputs {
  engine: import('../engine/types.ts').Engine;
  modelBytes: Uint8Array;
  model: ModelSpec;
  dataset: import('../data/types.ts').Dataset;
  /** cache of preprocessed crops (disk in Node, IndexedDB in the browser) */
  cropStore?: import('../data/types.ts').CropStore;
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
}

/**
 * Implemented in src/lib/experiment/run.ts: runs every config, sharing the FP32
 * evaluation and the calibration statistics between configs of one model and dataset.
 */
export type RunExperiments = (
  configs: import('../protocol/config.ts').ExperimentConfig[],
  inputs: RunInputs,
  opts?: RunOptions,
) => Promise<ExperimentResult[]>;
