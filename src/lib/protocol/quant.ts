/**
 * The quantization vocabulary that crosses the worker boundary and appears in configs,
 * URLs and CLI flags: granularities, observer names, backend names. Kept in protocol/ so
 * the config shapes need nothing from the quantizer's implementation.
 */
export type Granularity = 'per-tensor' | 'per-channel';

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
