/**
 * The deployment check as the worker returns it and the app shows it: a config simulated
 * and its integer export run on onnxruntime's integer kernels on the same images (simulated
 * versus deployed top-1, their agreement, the first layer where they part, the speed against
 * FP32 on the same engine). Pure types; src/lib/export/deploy-record.ts computes them.
 */
import type { ExperimentConfig } from '../config/types.ts';
import type { ErrorInfo } from '../util/errors.ts';

/** Fixed-point requantization multiplier: M ≈ M0·2^−shift with M0 an int32 in [2^30, 2^31). */
export interface FixedPointMultiplier {
  /** the integer multiplier (M0 as a Q31 number: M0 / 2^31 lies in [0.5, 1)) */
  m0: number;
  /** right shift n ≥ 0 (M = (M0 / 2^31) · 2^−n) */
  shift: number;
  /** (M0 / 2^31) · 2^−shift, the multiplier this pair represents */
  value: number;
}

export interface PixelTerm {
  /** input channel and kernel position */
  c: number;
  ky: number;
  kx: number;
  /** x − z_x (0 for padding) and w − z_w */
  x: number;
  w: number;
  /** their product, an int32 */
  product: number;
}

export interface PixelArithmetic {
  channel: number;
  y: number;
  x: number;
  terms: PixelTerm[];
  /** Σ products (int32) */
  accumulator: number;
  bias: number;
  /** accumulator + bias (int32) */
  total: number;
  /** float32 s_x·s_w / s_y */
  multiplier: number;
  /** float32(total)·M before rounding */
  scaled: number;
  /** the output code onnxruntime's kernel writes (float32 requantization) */
  code: number;
  fixedPoint: FixedPointMultiplier;
  /** the output code of integer-only requantization with M0 and the shift */
  fixedPointCode: number;
  /** the real value the code stands for: (code − z_y)·s_y */
  value: number;
}

/** One layer of the deployment recomputed by hand against the codes its kernel wrote (one image). */
export interface LayerArithmetic {
  /** ONNX node name and readable label */
  layer: string;
  label: string;
  /** outputs compared */
  outputs: number;
  /** outputs where the hand computation with the float32 multiplier gives the kernel's code */
  floatMatches: number;
  /** outputs where integer-only requantization (M0, shift) gives the kernel's code */
  fixedPointMatches: number;
  /** largest |fixed-point code − kernel code| */
  fixedPointMaxSteps: number;
  /** the arithmetic of one output (the centre of channel 0), for showing */
  example: PixelArithmetic;
}

export interface FirstDivergence {
  /** ONNX node name and readable label of the layer that writes the tensor */
  layer: string;
  label: string;
  tensor: string;
  /** largest code difference there, in integer steps */
  maxSteps: number;
  /** share of that tensor's elements that differ */
  share: number;
  reasons: string[];
}

/** Median milliseconds per image of the FP32 and the deployed model, same engine, same batch. */
export interface DeployedSpeed {
  fp32MsPerImage: number;
  deployedMsPerImage: number;
  /** deployed / FP32 time (below 1: the deployed model is faster) */
  ratio: number;
  rounds: number;
  batch: number;
}

export interface DeployedSummary {
  /** fractions, on the run's evaluation images */
  top1: number;
  top5: number;
  /** share of images whose deployed top-1 equals the simulated top-1 */
  agreement: number;
  /** the first layer where the deployment differs from the simulation by more than one step (null: none on the probed images) */
  firstDivergence: FirstDivergence | null;
  /** the first layer where any code differs: where the differences start */
  firstDifference: FirstDivergence | null;
  /** images the layer comparison used */
  divergenceImages: number;
  /** ops run as integer kernels, and quantized ops that stay in float */
  integerOps: number;
  floatOps: string[];
  speed?: DeployedSpeed;
  /** the deploy-exact simulation: its top-1 and its top-1 agreement with the deployment */
  exact?: { top1: number; agreement: number };
  /** one integer convolution recomputed by hand (the first depthwise one, else the first) */
  arithmetic?: LayerArithmetic;
}

/** One config's check: the simulation on the check's engine, and the deployment or why there is none. */
export interface DeployCheck {
  configHash: string;
  config: ExperimentConfig;
  /** the simulation, re-run for the check on its engine (fractions) */
  simulated: { top1: number; top5: number };
  /** evaluation images of both */
  images: number;
  engine: string;
  deployed?: DeployedSummary;
  /** why this config could not be deployed (e.g. not 8 bits) */
  error?: ErrorInfo;
}

/** Progress of a check: configs done (fractional) of the configs asked for, and what runs now. */
export interface DeployProgress {
  done: number;
  total: number;
  message: string;
}

export interface DeployCheckOptions {
  /** images of the layer-by-layer comparison (default 4) */
  divergenceImages?: number;
  /** rounds of the speed measurement (default 3; 0 skips it) */
  speedRounds?: number;
}
