/**
 * Results and progress of experiments: the shapes the CLI prints, the worker returns,
 * the UI stores and the URL restores. Pure types, shared by every layer.
 */
import type { ExperimentConfig } from '../config/types.ts';
import type { FixReport, LayerAnalysis, ModelAnalysis } from './analysis.ts';
import type { Accuracy } from './accuracy.ts';
import type { PtqReport } from './ptq.ts';

export type { Accuracy } from './accuracy.ts';

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
  fixes?: FixReport;
  /** per-layer error and BN drift, in network order (RunOptions.analyze) */
  layers?: LayerAnalysis[];
  /** whole-model weight-only / activation-only comparison (RunOptions.analyze) */
  analysis?: ModelAnalysis;
  /** per-layer reconstruction error and rounding flips (config.ptq 'adaround' / 'gptq') */
  ptq?: PtqReport;
  createdAt: string;
}

/** `finish`: the browser's worker saving the results once the pipeline is done (the pipeline itself never reports it) */
export type Stage =
  'load' | 'download' | 'decode' | 'fp32' | 'calibrate' | 'quantize' | 'evaluate' | 'analyze' | 'finish';

export interface Progress {
  stage: Stage;
  done: number;
  total: number;
  /** seconds left in this stage, when it can be estimated */
  etaSeconds?: number;
  message: string;
  /**
   * The counter a person reads, when done/total measure finer work than it: AdaRound and
   * GPTQ report their work as fractional layers (reading a layer's inputs is part of it)
   * and count whole layers here.
   */
  count?: { done: number; total: number; of: string };
}

export type ProgressFn = (p: Progress) => void;
