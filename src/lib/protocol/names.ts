/**
 * The value lists every layer agrees on — backend names, observer names, weight
 * granularities, activation signs and the supported bit range — written once here so
 * validation, the URL codec, the CLI, the UI and the quantizer cannot drift apart.
 * A leaf module: imports nothing.
 */

/** Deployment targets with a preset (see quant/presets.ts for what each one sets). */
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

export const GRANULARITIES = ['per-tensor', 'per-channel'] as const;
export type Granularity = (typeof GRANULARITIES)[number];

/** When activations use an unsigned integer range ('auto': unsigned where the calibrated range is non-negative). */
export const ACTIVATION_SIGNS = ['signed', 'unsigned', 'auto'] as const;
export type ActivationSign = (typeof ACTIVATION_SIGNS)[number];

/** Integer bit widths the quantizer supports (inclusive). */
export const BIT_RANGE = { min: 2, max: 16 } as const;

/** How weights are rounded: to nearest, or by layer-wise reconstruction (src/lib/ptq). */
export const PTQ_METHODS = ['none', 'adaround', 'gptq'] as const;
export type PtqMethod = (typeof PTQ_METHODS)[number];

/**
 * AdaRound optimisation steps per layer unless the config says otherwise. With the exact
 * loss, Adam's step of 0.03 and the final polish, 300 steps reach most of what 1,000 do on
 * MobileNet-V2's layers (src/lib/ptq/adaround.ts) and keep the whole model within minutes.
 */
export const DEFAULT_PTQ_ITERS = 300;
