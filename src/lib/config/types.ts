/**
 * ExperimentConfig: the one versioned, serializable object that fully determines a run.
 * The CLI, the worker and the URL hash all carry this type. Pure data, no logic here
 * beyond the type (resolution from presets lives in src/lib/config/resolve.ts).
 */
import type { ActivationSign, BackendName, Granularity, ObserverName, PtqInputs, PtqMethod } from './names.ts';

export type { ActivationSign } from './names.ts';

export const CONFIG_VERSION = 1 as const;

/** Which tensors get an activation fake-quantizer, per MQBench backend placement rules. */
export interface PlacementRules {
  /** inputs of Conv (incl. depthwise/grouped) — always true in every preset */
  conv: boolean;
  /** inputs of Gemm / MatMul (the classifier) */
  gemm: boolean;
  /** both inputs of elementwise Add (residual joins) */
  add: boolean;
  /** inputs of MaxPool / AveragePool / GlobalAveragePool */
  pool: boolean;
  /** inputs of Concat */
  concat: boolean;
  /** the model input itself, even where no quantized op reads it directly */
  modelInput: boolean;
}

export interface ExperimentConfig {
  v: typeof CONFIG_VERSION;
  /** registry id ('mobilenet-v2', ...) or 'sha256:<hex>' for a user's file */
  model: string;
  /** dataset id, e.g. 'imagenet-sample' */
  dataset: string;
  backend: BackendName;

  wBits: number;
  wGranularity: Granularity;
  wSymmetric: boolean;
  wNarrowRange: boolean;
  wPowerOfTwo: boolean;
  wObserver: ObserverName;

  aBits: number;
  aSymmetric: boolean;
  aNarrowRange: boolean;
  aPowerOfTwo: boolean;
  /** 'auto': unsigned where the calibrated range is non-negative (OpenVINO after ReLU) */
  aSign: ActivationSign;
  aObserver: ObserverName;

  placement: PlacementRules;
  /** keep the first conv and the classifier at 8 bits (MQBench academic setting) */
  firstLast8bit: boolean;
  /** fold BatchNormalization into the preceding Conv before quantizing */
  foldBn: boolean;

  calib: number;
  eval: number;
  seed: number;

  /** forward-only corrections applied after calibration (issue: see why accuracy drops) */
  biasCorrection: boolean;
  bnReestimate: boolean;
  /** cross-layer equalization with high-bias absorption before quantizing (src/lib/analysis/cle.ts) */
  cle: boolean;
  /** per-layer weight bit widths, ONNX node name → bits (mixed precision); {} = none */
  layerBits: Record<string, number>;
  /** weight rounding: 'none' = round-to-nearest; AdaRound / GPTQ reconstruct each layer from its Gram matrix (src/lib/ptq) */
  ptq: PtqMethod;
  /** AdaRound optimisation steps per layer (unused by 'none' and 'gptq') */
  ptqIters: number;
  /** where AdaRound's / GPTQ's layer inputs come from (unused by 'none') */
  ptqInputs: PtqInputs;
}

/** The fields a backend preset sets. Everything else comes from defaults. */
export type PresetFields = Pick<
  ExperimentConfig,
  | 'wBits'
  | 'wGranularity'
  | 'wSymmetric'
  | 'wNarrowRange'
  | 'wPowerOfTwo'
  | 'wObserver'
  | 'aBits'
  | 'aSymmetric'
  | 'aNarrowRange'
  | 'aPowerOfTwo'
  | 'aSign'
  | 'aObserver'
  | 'placement'
  | 'firstLast8bit'
>;

export interface BackendPreset extends PresetFields {
  name: BackendName;
  label: string;
  /** one sentence for the UI: what hardware, what the scheme is */
  description: string;
}
