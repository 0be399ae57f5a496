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

/** One unit of a reconstruction with engine gradients (a block for BRECQ and QDrop, a layer for AdaRound). */
export interface PtqUnitReport {
  /** first…last node of the unit */
  name: string;
  /** the weight layers optimised together */
  layers: string[];
  /** ‖y − y_fp‖² / ‖y_fp‖² of the unit's output on the calibration images, on entry and after */
  errorBefore: number;
  errorAfter: number;
  /** activation step sizes learned in this unit */
  scales: { tensor: string; before: number; after: number }[];
  seconds: number;
  /** median wall seconds of one optimisation step (engine pass and update; absent under two steps) */
  stepSeconds?: number;
  /** why the unit kept its rounding, when it did */
  skipped?: string;
  /** the learned rounding and step sizes ended above the entry's error, so the entry's were kept */
  keptEntry?: boolean;
}

export interface PtqReport {
  method: Exclude<PtqMethod, 'none'>;
  /** optimisation steps per layer or block (absent for GPTQ) */
  iters?: number;
  layers: PtqLayerReport[];
  /** per unit (methods with engine gradients: BRECQ, QDrop, AdaRound with learned activation ranges) */
  units?: PtqUnitReport[];
  /** whether activation step sizes were learned */
  learnActivations?: boolean;
  /** QDrop's probability of dropping an element's activation quantization */
  dropProb?: number;
  /** images per optimisation step */
  batch?: number;
  /**
   * seconds for the Gram matrices (shared by configs of one data split) or, with engine
   * gradients, for the forward passes that gather each unit's inputs and targets; and for solving
   */
  gramSeconds: number;
  solveSeconds: number;
}
