/**
 * The plug-in points of the experiment pipeline. The pipeline runs
 * prepare → quantize → build graph → evaluate; corrections of the fake-quant model
 * (bias correction, BN re-estimation) and the per-layer analysis are higher layers
 * (src/lib/analysis) that plug in here, so experiment/ never imports them.
 */
import type { Engine } from '../engine/types.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Graph } from '../onnx/ir.ts';
import type { QuantPoints } from '../onnx/placement.ts';
import type { ExperimentConfig } from '../config/types.ts';
import type { FixReport, LayerAnalysis, ModelAnalysis } from '../protocol/analysis.ts';
import type { PtqReport } from '../protocol/ptq.ts';
import type { ActivationQuant, WeightQuant } from './quantize.ts';

/** What a stage sees of one config after quantization. */
export interface StageContext {
  engine: Engine;
  /** the FP32 graph the quantization points were found on (BN folded when the config folds) */
  graph: Graph;
  points: QuantPoints;
  weights: WeightQuant[];
  activations: ActivationQuant[];
  spec: PreprocessSpec;
  calibCrops: Uint8Array[];
  evalCrops: Uint8Array[];
  evalLabels: number[];
  /** the graph only accepts batch 1 */
  fixedBatch: boolean;
  calibBatch: number;
  evalBatch: number;
  signal?: AbortSignal;
  onProgress: (message: string, done: number, total: number) => void;
}

/** What a transform stage sees: the FP32 graph (BN folded when the config folds) and calibration images. */
export interface TransformContext {
  engine: Engine;
  graph: Graph;
  spec: PreprocessSpec;
  calibCrops: Uint8Array[];
  batchSize: number;
  signal?: AbortSignal;
  /** RunOptions.cleRelu6: how equalization treats ReLU6 */
  cleRelu6?: 'clip' | 'relu' | 'keep';
  /** RunOptions.cleAbsorb: whether equalization also absorbs high biases */
  cleAbsorb?: boolean;
}

/**
 * A function-preserving rewrite of the FP32 graph applied before quantization points are
 * found (cross-layer equalization). The FP32 reference stays the untransformed model.
 */
export interface TransformStage {
  /** progress text while it runs */
  label: string;
  wanted(cfg: ExperimentConfig): boolean;
  apply(ctx: TransformContext, cfg: ExperimentConfig): Promise<{ graph: Graph }>;
}

/**
 * What a weight stage sees: the fields of StageContext it needs (its `weights` are the
 * round-to-nearest weights on the observers' grids) and the calibration images.
 */
export interface WeightContext extends Pick<
  StageContext,
  'engine' | 'graph' | 'points' | 'weights' | 'activations' | 'spec' | 'calibCrops' | 'signal' | 'onProgress'
> {
  batchSize: number;
  /** per data split: work a stage may share between the configs of one group (e.g. Gram matrices) */
  shared: Map<string, unknown>;
}

/**
 * Replaces round-to-nearest weights before the fake-quant graph is built (AdaRound,
 * GPTQ from src/lib/ptq); runs between the statistics and the graph, cancellable at
 * layer boundaries through ctx.signal.
 */
export interface WeightStage {
  wanted(cfg: ExperimentConfig): boolean;
  apply(ctx: WeightContext, cfg: ExperimentConfig): Promise<{ weights: WeightQuant[]; report: PtqReport }>;
}

export interface FixStage {
  /** true when this config asks for a correction this stage performs */
  wanted(cfg: ExperimentConfig): boolean;
  /** the corrected fake-quant graph and what was done */
  apply(ctx: StageContext, cfg: ExperimentConfig): Promise<{ graph: Graph; report: FixReport }>;
}

export interface AnalyzeStage {
  /** per-layer analysis of the evaluated model (`quantized`: the corrected graph when fixes ran) */
  run(
    ctx: StageContext,
    images: number,
    quantized: Graph | undefined,
  ): Promise<{ layers: LayerAnalysis[]; analysis: ModelAnalysis }>;
}

/** Stages plugged into the pipeline from outside; all optional. */
export interface PipelineStages {
  transform?: TransformStage;
  weights?: WeightStage;
  fix?: FixStage;
  analyze?: AnalyzeStage;
}
