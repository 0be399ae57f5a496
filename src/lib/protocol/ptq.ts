/**
 * What a reconstruction run (AdaRound / GPTQ, src/lib/ptq) reports per layer, for the
 * result, the CLI table and the results chart. Pure types, here so results can name them.
 */
import type { PtqMethod } from '../config/names.ts';

export interface PtqLayerReport {
  /** the layer's node and weight initializer */
  node: string;
  initializer: string;
  bits: number;
  /** ‖(W − W̃)X‖² / ‖WX‖² on the calibration inputs, round-to-nearest and after the method */
  errorBefore: number;
  errorAfter: number;
  /** fraction of weights whose code differs from round-to-nearest */
  flips: number;
  seconds: number;
  /** why the layer kept round-to-nearest, when it did */
  skipped?: string;
}

export interface PtqReport {
  method: Exclude<PtqMethod, 'none'>;
  /** AdaRound steps per layer (absent for GPTQ) */
  iters?: number;
  layers: PtqLayerReport[];
  /** seconds for the Gram matrices (shared by configs of one data split) and for solving */
  gramSeconds: number;
  solveSeconds: number;
}
