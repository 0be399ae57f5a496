/**
 * The weight side of a config, computed from the weights alone so every weight control
 * answers at once (no Run): per-layer weight SQNR, per-channel FP32 ranges, vanished
 * channels, the model's size at those bits, and one layer's weight histogram with its
 * quantization grid. The FP32 per-layer weights are prepared once per model and fold
 * setting (`prepareWeightModel`); a change then costs only quantization, and per-layer
 * results are memoized by the layer's quantizer so unchanged layers cost nothing.
 * Uses the project's observers and quantizer, so the numbers equal those of a Run.
 * Pure: no engine, no I/O.
 */
import type { ExperimentConfig } from '../config/types.ts';
import type { WeightHistogram } from '../protocol/analysis.ts';
import type { WeightLayerView, WeightView } from '../protocol/instant.ts';
import { QpError } from '../util/errors.ts';
import { foldBatchNorm } from '../onnx/fold-bn.ts';
import type { Graph } from '../onnx/ir.ts';
import { layerNames } from '../onnx/layer-names.ts';
import { findQuantPoints } from '../onnx/placement.ts';
import { histogramOf } from '../quant/histogram.ts';
import { observeWeight } from '../quant/observers.ts';
import { weightSpec } from '../quant/spec.ts';
import { channelLayout, computeQParams, fakeQuantize } from '../quant/quantizer.ts';
import { roundHalfToEven } from '../quant/round.ts';
import type { QParams, QuantSpec } from '../quant/types.ts';
import { findLayers, type Layer } from './layers.ts';
import { bitsOf, channelRanges, errorMetrics } from './metrics.ts';

interface PreparedLayer {
  layer: Layer;
  label: string;
  data: Float32Array;
  dims: number[];
  channelMin: number[];
  channelMax: number[];
  /** quantizer key → metrics (a few entries: the latest settings) */
  memo: Map<string, { qp: QParams; bits: number; sqnrDb: number; vanished: number; scaleEntries: number }>;
}

export interface WeightModel {
  layers: PreparedLayer[];
  /** float initializer elements that are not quantized weights (biases, BN, …) */
  otherFloats: number;
}

const MEMO_LIMIT = 8;

/** Observers whose weight range is the plain min/max (observers.ts weightMinMax): the cached channel ranges serve them. */
const MINMAX_WEIGHT = new Set<string>(['minmax', 'ema-minmax']);

/** The clipping range of a layer: from the cached channel ranges for min/max observers, else the observer. */
function rangeOf(p: PreparedLayer, cfg: ExperimentConfig, spec: QuantSpec): { min: Float32Array; max: Float32Array } {
  if (!MINMAX_WEIGHT.has(cfg.wObserver)) return observeWeight(cfg.wObserver, p.data, p.dims, spec);
  if (spec.granularity === 'per-channel')
    return { min: Float32Array.from(p.channelMin), max: Float32Array.from(p.channelMax) };
  return { min: Float32Array.of(Math.min(...p.channelMin)), max: Float32Array.of(Math.max(...p.channelMax)) };
}

/**
 * One pass over a layer: fake-quantize each value exactly as quantizer.ts does
 * (q = clip(round½even(fround(x/s))), y = fround(q·s)) and accumulate Σx², Σ(y−x)² and
 * which output channels keep a non-zero value, without allocating the quantized tensor.
 */
function quantStats(p: PreparedLayer, qp: QParams): { sqnrDb: number; vanished: number } {
  const { outer, channels, inner } = channelLayout(p.dims, p.layer.point.axis, p.data.length);
  const perTensor = qp.scale.length === 1;
  const fpNonZero = new Uint8Array(channels);
  const qNonZero = new Uint8Array(channels);
  const fround = Math.fround;
  const x = p.data;
  // plain loops with locals: this runs on every change over every weight of the model
  let refSq = 0;
  let diffSq = 0;
  let i = 0;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const k = perTensor ? 0 : c;
      const s = qp.scale[k];
      const lo = qp.qmin - qp.zeroPoint[k];
      const hi = qp.qmax - qp.zeroPoint[k];
      let fz = 0;
      let qz = 0;
      const end = i + inner;
      for (; i < end; i++) {
        const v = x[i];
        let q = roundHalfToEven(fround(v / s));
        q = q < lo ? lo : q > hi ? hi : q;
        const y = fround(q * s);
        const d = y - v;
        refSq += v * v;
        diffSq += d * d;
        fz |= v !== 0 ? 1 : 0;
        qz |= y !== 0 ? 1 : 0;
      }
      if (fz) fpNonZero[c] = 1;
      if (qz) qNonZero[c] = 1;
    }
  }
  let vanished = 0;
  for (let c = 0; c < channels; c++) if (fpNonZero[c] && !qNonZero[c]) vanished++;
  return { sqnrDb: errorMetrics({ refSq, diffSq, cross: 0, qSq: 0, count: x.length }).sqnrDb, vanished };
}

/** FP32 weights per quantized layer of `graph` (BN folded first when `foldBn`). */
export function prepareWeightModel(graph: Graph, foldBn: boolean): WeightModel {
  const g = foldBn ? foldBatchNorm(graph).graph : graph;
  const all = { conv: true, gemm: true, add: false, pool: false, concat: false, modelInput: false };
  const points = findQuantPoints(g, all);
  const names = layerNames(g);
  const layers = findLayers(g, points.weights).map((layer): PreparedLayer => {
    const init = g.initializers.get(layer.point.initializer)!;
    const data = init.data as Float32Array;
    const r = channelRanges(data, init.dims, layer.point.axis);
    return {
      layer,
      label: names.get(layer.name)?.label ?? layer.name,
      data,
      dims: [...init.dims],
      channelMin: Array.from(r.min),
      channelMax: Array.from(r.max),
      memo: new Map(),
    };
  });
  const quantized = new Set(layers.map((l) => l.layer.point.initializer));
  let otherFloats = 0;
  for (const [name, t] of g.initializers)
    if (t.dtype === 'float32' && !quantized.has(name)) otherFloats += t.data.length;
  return { layers, otherFloats };
}

/** Per-layer bit overrides a config may carry (`layerBits`, keyed by layer name), if any. */
function layerBitsOf(cfg: ExperimentConfig): Record<string, number> | undefined {
  const lb = (cfg as { layerBits?: unknown }).layerBits;
  return lb && typeof lb === 'object' ? (lb as Record<string, number>) : undefined;
}

/** The quantizer spec of one layer under `cfg` (layerBits > firstLast8bit > wBits) and its memo key. */
function specOf(p: PreparedLayer, cfg: ExperimentConfig): { spec: QuantSpec; key: string } {
  const pt = p.layer.point;
  const override = layerBitsOf(cfg)?.[p.layer.name];
  const bits = override ?? (cfg.firstLast8bit && (pt.isFirst || pt.isLast) ? Math.max(8, cfg.wBits) : undefined);
  const spec = weightSpec(cfg, pt.axis, bits);
  return { spec, key: JSON.stringify([spec, cfg.wObserver]) };
}

/** The weight-side fields of a config (what the view depends on). */
export function weightViewKey(cfg: ExperimentConfig): string {
  return JSON.stringify([
    cfg.wBits,
    cfg.wGranularity,
    cfg.wSymmetric,
    cfg.wNarrowRange,
    cfg.wPowerOfTwo,
    cfg.wObserver,
    cfg.firstLast8bit,
    cfg.foldBn,
    layerBitsOf(cfg) ?? null,
  ]);
}

/** Histogram of FP32 and fake-quantized weights over the FP32 range, with the grid (per-tensor). */
export function weightHistogram(
  fp: Float32Array,
  dims: readonly number[],
  axis: number,
  qp: QParams,
  q: Float32Array,
  bins: number,
): WeightHistogram {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < fp.length; i++) {
    const v = fp[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!(hi > lo)) hi = lo + 1e-8;
  const scale = Array.from(qp.scale);
  const zeroPoint = Array.from(qp.zeroPoint);
  const r = channelRanges(fp, dims, axis);
  const h: WeightHistogram = {
    lo,
    hi,
    counts: Array.from(histogramOf(fp, lo, hi, bins)),
    quantizedCounts: Array.from(histogramOf(q, lo, hi, bins)),
    bits: bitsOf(qp),
    scale,
    zeroPoint,
    qmin: qp.qmin,
    qmax: qp.qmax,
    clipMin: scale.map((s, i) => s * (qp.qmin - zeroPoint[i])),
    clipMax: scale.map((s, i) => s * (qp.qmax - zeroPoint[i])),
    channelMin: Array.from(r.min),
    channelMax: Array.from(r.max),
  };
  if (scale.length === 1 && qp.qmax - qp.qmin < 4096) {
    const pts: number[] = [];
    for (let v = qp.qmin; v <= qp.qmax; v++) {
      const x = scale[0] * (v - zeroPoint[0]);
      if (x >= lo && x <= hi) pts.push(x);
    }
    h.gridPoints = pts;
  }
  return h;
}

/**
 * The weight view of `cfg` on a prepared model; `layer` (a layer name) adds that layer's
 * histogram. Throws QpError ARG_INVALID for an unknown layer name, CONFIG_INVALID for bad bits.
 */
export function weightView(
  m: WeightModel,
  cfg: ExperimentConfig,
  opts: { layer?: string; bins?: number } = {},
): WeightView {
  const t0 = performance.now();
  const layers: WeightLayerView[] = [];
  let quantBytes = m.otherFloats * 4;
  let fp32Bytes = m.otherFloats * 4;
  let selected: WeightView['selected'];
  for (const p of m.layers) {
    const { spec, key } = specOf(p, cfg);
    let r = p.memo.get(key);
    const wantHist = opts.layer === p.layer.name;
    let q: Float32Array | undefined;
    if (!r) {
      const qp = computeQParams(rangeOf(p, cfg, spec), spec);
      r = { qp, bits: bitsOf(qp), ...quantStats(p, qp), scaleEntries: qp.scale.length };
      if (p.memo.size >= MEMO_LIMIT) p.memo.delete(p.memo.keys().next().value!);
      p.memo.set(key, r);
    }
    if (wantHist) q = fakeQuantize(p.data, p.dims, r.qp);
    if (wantHist && q)
      selected = {
        name: p.layer.name,
        histogram: weightHistogram(p.data, p.dims, p.layer.point.axis, r.qp, q, opts.bins ?? 96),
      };
    const n = p.data.length;
    fp32Bytes += n * 4;
    // packed integer codes, plus a float32 scale and an integer zero point per scale entry
    quantBytes += Math.ceil((n * r.bits) / 8) + r.scaleEntries * (4 + Math.ceil(r.bits / 8));
    layers.push({
      name: p.layer.name,
      label: p.label,
      onnx: p.layer.node.name,
      opType: p.layer.point.opType,
      depthwise: p.layer.point.depthwise,
      bits: r.bits,
      sqnrDb: r.sqnrDb,
      channels: p.layer.channels,
      vanished: r.vanished,
      params: n,
      channelMin: p.channelMin,
      channelMax: p.channelMax,
    });
  }
  if (opts.layer !== undefined && !selected) {
    throw new QpError(
      'ARG_INVALID',
      `The model has no quantized layer named "${opts.layer}". Pick a layer from the list.`,
    );
  }
  return { key: weightViewKey(cfg), layers, fp32Bytes, quantBytes, selected, ms: performance.now() - t0 };
}
