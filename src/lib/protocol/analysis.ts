/**
 * Shapes of the "why does accuracy drop" analysis: per-layer quantization error,
 * BatchNorm statistic drift and the record of applied fixes. Pure types, JSON-safe
 * (plain number arrays, no typed arrays) so they go into --json records, the worker
 * protocol and IndexedDB unchanged.
 */
import type { Accuracy } from './accuracy.ts';

/** Error of a quantized tensor against its FP32 reference over the analysis images. */
export interface ErrorMetrics {
  /** 10·log10(Σref² / Σ(q − ref)²); +Infinity when identical */
  sqnrDb: number;
  /** Σref·q / (‖ref‖‖q‖) */
  cosine: number;
  /** mean of (q − ref)², in squared output units */
  mse: number;
}

/** Per-layer summary of per-channel output statistics against a reference. */
export interface DriftSummary {
  /** mean over channels of |μ − μ_ref| / σ_ref */
  meanAbsShift: number;
  /** mean over channels of σ / σ_ref */
  stdRatio: number;
  /** channels counted (channels with σ_ref ≈ 0 are left out) */
  channels: number;
}

/** Per-channel mean and std of one layer's output (pre-activation) over the analysis images. */
export interface ChannelDrift {
  fpMean: number[];
  fpStd: number[];
  qMean: number[];
  qStd: number[];
  /** running statistics of the BatchNormalization reading this output, when one is left unfolded */
  runningMean?: number[];
  runningStd?: number[];
}

export interface LayerAnalysis {
  /** node name (or `<opType>_<output>` when the node has none) */
  name: string;
  opType: 'Conv' | 'Gemm' | 'MatMul';
  depthwise: boolean;
  /** index in network (topological) order among the quantized layers */
  index: number;
  /** the layer's output tensor (pre-activation; the folded BN output when BN was folded) */
  output: string;
  weight: string;
  weightBits: number;
  /** SQNR of the whole fake-quantized weight tensor against the FP32 (folded) weights */
  weightSqnrDb: number;
  /** only this layer quantized (its input activation and weights), everything upstream FP32 */
  standalone: ErrorMetrics;
  /** the whole model quantized (as evaluated, fixes included), error seen at this output */
  accumulated: ErrorMetrics;
  /** the fake-quantized data input of the layer; null when that input is not quantized */
  activationInput: { tensor: string; min: number; max: number; bits: number } | null;
  /** output channels */
  channels: number;
  /** channels whose fake-quantized weights are all zero while the FP32 ones are not */
  vanishedChannels: number;
  /** min / max of the FP32 (folded) weights per output channel */
  weightRanges: { min: number[]; max: number[] };
  /** quantized (accumulated) vs FP32 output statistics */
  drift: DriftSummary;
  /** FP32 and quantized vs the running statistics of an unfolded BN reading this output */
  driftVsRunning?: { fp: DriftSummary; q: DriftSummary };
  channelDrift: ChannelDrift;
}

export interface ModelAnalysis {
  /** analysis images (taken from the start of the evaluation split) */
  images: number;
  /** top-1/top-5 with only the weights quantized, on the evaluation images */
  weightOnly: Accuracy;
  /** top-1/top-5 with only the activations quantized, on the evaluation images */
  activationOnly: Accuracy;
  /** SQNR of the logits against FP32 on the analysis images */
  logitsSqnrDb: { full: number; weightOnly: number; activationOnly: number };
  seconds: number;
}

/** What a fix did, pass by pass (calibration images). */
export interface FixPasses {
  passes: number;
  /**
   * residual measured by each pass before its update, then after the last update (passes + 1
   * entries; each layer measured with its upstream corrected in-graph): mean over layers of
   * the mean over channels of |μ_q − μ_fp| / σ_fp (bias correction), or of that plus
   * |σ_q/σ_fp − 1| (BN re-estimation). Entry 0: before any folded correction.
   */
  residual: number[];
  /** layers corrected; MatMul layers (no bias input) are left out */
  layers: number;
}

export interface FixReport {
  bnReestimate?: FixPasses;
  biasCorrection?: FixPasses;
  seconds: number;
}

/** Histogram views of one layer's weights (analysis/detail.ts fills them). */
export interface WeightHistogram {
  /** equal-width bins over [lo, hi] (the FP32 weight range) */
  lo: number;
  hi: number;
  counts: number[];
  /** the fake-quantized weights binned over the same bins */
  quantizedCounts: number[];
  bits: number;
  /** the quantizer: one entry per-tensor, one per output channel per-channel */
  scale: number[];
  zeroPoint: number[];
  qmin: number;
  qmax: number;
  /** clipping range per scale entry: scale·(qmin − zp) … scale·(qmax − zp) */
  clipMin: number[];
  clipMax: number[];
  /** per-tensor only (and at most 4,096 levels): every grid value inside [lo, hi] */
  gridPoints?: number[];
  /** FP32 weight range per output channel */
  channelMin: number[];
  channelMax: number[];
}

export interface ActivationHistogram {
  tensor: string;
  lo: number;
  hi: number;
  counts: number[];
  /** calibrated clipping range and bits of the activation quantizer */
  calibMin: number;
  calibMax: number;
  bits: number;
  /** 'calibration': the histogram pass of calibration; 'sample': fetched on `images` calibration images */
  source: 'calibration' | 'sample';
  images: number;
}
