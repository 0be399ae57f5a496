/**
 * Shapes of the instant views, which need no Run: the weight-side view (per-layer weight
 * SQNR, channel ranges, vanished channels, model size, the selected layer's histogram)
 * computed from the weights alone, the model's layer graph with readable names, and the
 * background accuracy estimate. JSON-safe plain data.
 */
import type { WeightHistogram } from './analysis.ts';

export interface WeightLayerView {
  /** analysis key (node name, or `<opType>_<output>`) */
  name: string;
  /** readable name ("block 16 · project 1×1") */
  label: string;
  onnx: string;
  opType: 'Conv' | 'Gemm' | 'MatMul';
  depthwise: boolean;
  bits: number;
  /** weight SQNR (dB) of the whole tensor; +Infinity when exact */
  sqnrDb: number;
  channels: number;
  /** channels whose quantized weights are all zero while the FP32 ones are not */
  vanished: number;
  params: number;
  /** FP32 weight range per output channel */
  channelMin: number[];
  channelMax: number[];
}

export interface WeightView {
  /** the weight-side fields this view was computed for (JSON) */
  key: string;
  layers: WeightLayerView[];
  /** bytes of all float initializers at FP32 */
  fp32Bytes: number;
  /** bytes at these bits: quantized weights packed at their bits, scales and zero points, the rest FP32 */
  quantBytes: number;
  /** the selected layer's weight histogram with its quantization grid */
  selected?: { name: string; histogram: WeightHistogram };
  /** milliseconds the worker spent computing this view */
  ms: number;
}

export interface LayerGraphView {
  nodes: { id: string; kind: 'layer' | 'join' | 'input' | 'output'; label: string; onnx: string; opType: string }[];
  edges: { from: string; to: string }[];
}

/**
 * Images of the background estimate by default. Its evaluation is nearly all of an estimate
 * once the calibration statistics are cached, so the image count sets how long a student
 * waits after a change (measured in docs/performance.md, "In the browser"). The price is
 * precision: 20 of 24 right is a 95% interval of 64–93%, where 28 of 32 gives 72–95%; the
 * card lets one ask for more.
 */
export const ESTIMATE_IMAGES = 24;

/** A quick top-1 / agreement estimate on a small fixed subset of the evaluation images. */
export interface AccuracyEstimate {
  /** configHash of the settings it estimates */
  configHash: string;
  images: number;
  /** top-1 of the quantized model and its 95% Wilson interval */
  top1: number;
  top1Interval: [number, number];
  /** share of images where quantized and FP32 predict the same class, with its interval */
  agreement: number;
  agreementInterval: [number, number];
  fp32Top1: number;
  /** calibration statistics came from the cache (memory or this browser's storage) */
  statsCached: boolean;
  /**
   * the config's weight rounding stage (AdaRound, GPTQ) that the estimate leaves out: its
   * weights are rounded to nearest, and only a full Run applies the stage
   */
  ptqSkipped?: string;
  seconds: number;
  /**
   * Where the seconds went: statistics (FP32 outputs and calibration, or reading them back;
   * 0 from memory), weights (quantizing them), build (fake-quant graph and its session), and
   * evaluate (the fix stages when the config asks for them, then the quantized model on the images)
   */
  split?: { statistics: number; weights: number; build: number; evaluate: number };
}
