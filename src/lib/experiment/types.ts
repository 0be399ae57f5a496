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
