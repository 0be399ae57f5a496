/**
 * The value lists every layer agrees on — backend names, observer names, weight
 * granularities, activation signs and the supported bit range — written once here so
 * validation, the URL codec, the CLI, the UI and the quantizer cannot drift apart.
 * A leaf module: imports nothing.
 */

/** Deployment targets with a preset (see config/presets.ts for what each one sets). */
export const BACKEND_NAMES = [
  'academic',
  'tensorrt',
  'snpe',
  'fbgemm',
  'ppl-cuda',
  'openvino',
  'vitis',
  'onnx-qnn',
  'tengine',
] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** Range observers (quant/observers.ts implements them). */
export const OBSERVER_NAMES = [
  'minmax',
  'ema-minmax',
  'mse',
  'ema-mse',
  'percentile',
  'ema-quantile',
  'clipstd',
  'kl',
] as const;
export type ObserverName = (typeof OBSERVER_NAMES)[number];

/**
 * What a config's observer fields may name: an observer above, or 'imported', the ranges
 * and grids of an imported quantized model (config field importedScheme; src/lib/imported).
 * 'imported' is no statistic of calibration data, so it is not in OBSERVER_NAMES.
 */
export const OBSERVER_CHOICES = [...OBSERVER_NAMES, 'imported'] as const;
export type ObserverChoice = (typeof OBSERVER_CHOICES)[number];

/** The value of importedScheme that names no imported model. */
export const NO_IMPORTED_SCHEME = 'none';

export const GRANULARITIES = ['per-tensor', 'per-channel'] as const;
export type Granularity = (typeof GRANULARITIES)[number];

/** When activations use an unsigned integer range ('auto': unsigned where the calibrated range is non-negative). */
export const ACTIVATION_SIGNS = ['signed', 'unsigned', 'auto'] as const;
export type ActivationSign = (typeof ACTIVATION_SIGNS)[number];

/** Integer bit widths the quantizer supports (inclusive). */
export const BIT_RANGE = { min: 2, max: 16 } as const;

/**
 * How weights are rounded: to nearest, by layer-wise reconstruction (AdaRound, GPTQ), or
 * by block-wise reconstruction with learned activation step sizes (BRECQ, QDrop); src/lib/ptq.
 */
export const PTQ_METHODS = ['none', 'adaround', 'gptq', 'brecq', 'qdrop'] as const;
export type PtqMethod = (typeof PTQ_METHODS)[number];

/**
 * Where a reconstructed layer's inputs come from: the quantized model before it (MQBench's
 * setting, so each layer also corrects the error of the layers before it) or the FP32 model
 * (one Gram pass shared by every config, but the errors add up across layers).
 */
export const PTQ_INPUTS = ['quantized-prefix', 'fp32'] as const;
export type PtqInputs = (typeof PTQ_INPUTS)[number];

/**
 * Activation step sizes during reconstruction: learned by LSQ's gradient together with the
 * rounding, or kept as the observers calibrated them. 'auto' learns them for the block
 * methods (BRECQ, QDrop, as MQBench does) and keeps them for AdaRound, whose fixed-range
 * form solves on Gram matrices in a few minutes.
 */
export const PTQ_ACT_RANGES = ['auto', 'learned', 'calibrated'] as const;
export type PtqActRanges = (typeof PTQ_ACT_RANGES)[number];

/** Whether a config's reconstruction learns activation step sizes (see PTQ_ACT_RANGES). */
export function learnsActivationRanges(c: { ptq: PtqMethod; ptqActRanges: PtqActRanges }): boolean {
  if (c.ptq === 'none' || c.ptq === 'gptq') return false;
  return c.ptqActRanges === 'learned' || (c.ptqActRanges === 'auto' && c.ptq !== 'adaround');
}

/**
 * Whether a config's reconstruction runs on engine gradients (src/lib/ptq/block-recon.ts):
 * BRECQ and QDrop always, AdaRound when it learns activation step sizes (with calibrated
 * ranges the Gram-matrix solver is exact and faster).
 */
export function usesEngineGradients(c: { ptq: PtqMethod; ptqActRanges: PtqActRanges }): boolean {
  // Stryker disable next-line ConditionalExpression: learnsActivationRanges is false for the methods left after BRECQ and QDrop but AdaRound
  return c.ptq === 'brecq' || c.ptq === 'qdrop' || (c.ptq === 'adaround' && learnsActivationRanges(c));
}

/** A reconstruction method's name as a person reads it. */
export const PTQ_LABEL: Record<Exclude<PtqMethod, 'none'>, string> = {
  adaround: 'AdaRound',
  gptq: 'GPTQ',
  brecq: 'BRECQ',
  qdrop: 'QDrop',
};

/**
 * AdaRound optimisation steps per layer unless the config says otherwise: enough to keep
 * MobileNet-V2's reconstruction within a few minutes on wasm, though more steps still lower
 * some layers' errors (docs/reconstruction.md, "300 steps").
 */
export const DEFAULT_PTQ_ITERS = 300;

/**
 * How cross-layer equalization treats a ReLU6 between a pair of layers: 'clip' turns it into
 * a ReLU followed by a per-channel clip (exact), 'relu' replaces it by a ReLU (exact while
 * activations stay below 6), 'keep' leaves the clip at 6 (pairs through it are not rescaled).
 */
export const CLE_RELU6_MODES = ['clip', 'relu', 'keep'] as const;
export type CleRelu6Mode = (typeof CLE_RELU6_MODES)[number];

/**
 * How images are prepared for the model: 'model' is the model's own preprocessing (the
 * registry's for a known model, torchvision's for any other); the others name one.
 */
export const PREPROCESS_CHOICES = ['model', 'torchvision', 'efficientnet-lite'] as const;
export type PreprocessChoice = (typeof PREPROCESS_CHOICES)[number];
