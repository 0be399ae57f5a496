/**
 * Pure helpers behind the "Why accuracy drops" views: the per-layer metrics one can
 * chart (with which direction is worse), layer ordering, and the layer × channel drift
 * matrix for the heatmap. No Svelte, no DOM, no worker: plain data in, plain data out.
 */
import type { LayerAnalysis } from '../analysis/types.ts';

export type MetricKey = 'standaloneSqnr' | 'accumulatedSqnr' | 'cosine' | 'mse' | 'weightSqnr' | 'drift' | 'vanished';
export type LayerOrder = 'network' | 'worst';

export interface MetricInfo {
  label: string;
  /** axis label (with unit) */
  axis: string;
  /** which direction is worse: 'low' (SQNR, cosine) or 'high' (MSE, drift, vanished) */
  worse: 'low' | 'high';
  value: (l: LayerAnalysis) => number;
  /** one or two sentences for students: what to look for */
  explain: string;
}

export const METRICS: Record<MetricKey, MetricInfo> = {
  standaloneSqnr: {
    label: 'Activation SQNR, this layer alone',
    axis: 'SQNR (dB), only this layer quantized',
    worse: 'low',
    value: (l) => l.standalone.sqnrDb,
    explain:
      'Only this layer (its input activation and weights) is quantized, everything else stays FP32. Low bars are the layers that hurt by themselves; every 6 dB less is about one bit of precision lost.',
  },
  accumulatedSqnr: {
    label: 'Activation SQNR, whole model quantized',
    axis: 'SQNR (dB), whole model quantized',
    worse: 'low',
    value: (l) => l.accumulated.sqnrDb,
    explain:
      'The whole model is quantized and the error is measured at this layer’s output, so errors of earlier layers add up. A falling staircase means the error accumulates; a sudden dip points at the layer that causes it.',
  },
  cosine: {
    label: 'Cosine similarity, whole model quantized',
    axis: 'cosine similarity to FP32',
    worse: 'low',
    value: (l) => l.accumulated.cosine,
    explain:
      'How well the quantized output points in the same direction as the FP32 one (1 = same). Unlike SQNR it ignores a change of scale, so a low cosine means the pattern itself is lost.',
  },
  mse: {
    label: 'Mean squared error, whole model quantized',
    axis: 'MSE (output units²)',
    worse: 'high',
    value: (l) => l.accumulated.mse,
    explain:
      'The raw squared error at each output. It depends on how large the layer’s values are, so compare layers with SQNR; MSE shows where the absolute error is large.',
  },
  weightSqnr: {
    label: 'Weight SQNR (whole tensor)',
    axis: 'weight SQNR (dB)',
    worse: 'low',
    value: (l) => l.weightSqnrDb,
    explain:
      'How well the quantized weights match the FP32 ones, over the whole tensor. It is a poor predictor of the damage: a layer can have a good overall SQNR while some of its channels round to zero.',
  },
  drift: {
    label: 'BN statistic drift |Δμ|/σ',
    axis: 'mean over channels of |Δμ|/σ',
    worse: 'high',
    value: (l) => l.drift.meanAbsShift,
    explain:
      'How far the quantized model’s per-channel output means move, in FP32 standard deviations. The next layers (and BatchNorm, folded or not) expect the FP32 statistics; bias correction removes exactly this shift.',
  },
  vanished: {
    label: 'Vanished channels',
    axis: 'output channels whose weights all round to 0',
    worse: 'high',
    value: (l) => l.vanishedChannels,
    explain:
      'Channels whose weights are all rounded to zero: their output becomes a constant. This happens when one scale is shared by channels whose ranges differ by 100× or more.',
  },
};

export const METRIC_KEYS = Object.keys(METRICS) as MetricKey[];

/** The kind of layer, for colour and for the depthwise lesson. */
export function layerKind(l: LayerAnalysis): 'depthwise conv' | 'conv' | 'fully connected' {
  if (l.opType !== 'Conv') return 'fully connected';
  return l.depthwise ? 'depthwise conv' : 'conv';
}

/**
 * Layers in network order, or worst first for `metric` (layers whose value is not a
 * finite number, e.g. an SQNR of +∞ for an exact match, go last).
 */
export function orderLayers(layers: readonly LayerAnalysis[], metric: MetricKey, order: LayerOrder): LayerAnalysis[] {
  const byIndex = [...layers].sort((a, b) => a.index - b.index);
  if (order === 'network') return byIndex;
  const m = METRICS[metric];
  const key = (l: LayerAnalysis) => {
    const v = m.value(l);
    if (!Number.isFinite(v)) return Infinity;
    return m.worse === 'low' ? v : -v;
  };
  return byIndex.sort((a, b) => key(a) - key(b) || a.index - b.index);
}

/** Per-channel Δμ/σ of one layer (NaN where the FP32 σ is ~0). */
export function channelShift(l: LayerAnalysis): Float32Array {
  const d = l.channelDrift;
  const out = new Float32Array(d.fpMean.length);
  for (let c = 0; c < out.length; c++) {
    const s = d.fpStd[c];
    out[c] = s > 1e-12 ? (d.qMean[c] - d.fpMean[c]) / s : NaN;
  }
  return out;
}

export interface DriftMatrix {
  /** row-major rows × cols, NaN where a layer has fewer channels (or σ ≈ 0) */
  values: Float32Array;
  rows: number;
  cols: number;
  /** layer names, one per row */
  names: string[];
  /** channel index of each cell (differs from the column when channels are sorted) */
  channelOf: Int32Array;
  /** 98th percentile of |Δμ/σ| over all cells: a colour range that is not set by one outlier */
  p98: number;
}

/**
 * Layer × channel matrix of Δμ/σ for the heatmap. With `sortChannels`, each row is sorted
 * by value (most negative left), which makes rows comparable at a glance.
 */
export function driftMatrix(layers: readonly LayerAnalysis[], sortChannels = false): DriftMatrix {
  const rows = layers.length;
  const cols = Math.max(1, ...layers.map((l) => l.channelDrift.fpMean.length));
  const values = new Float32Array(rows * cols).fill(NaN);
  const channelOf = new Int32Array(rows * cols).fill(-1);
  const abs: number[] = [];
  layers.forEach((l, r) => {
    const v = channelShift(l);
    const idx = Array.from(v.keys());
    if (sortChannels) idx.sort((a, b) => (Number.isNaN(v[a]) ? 1 : Number.isNaN(v[b]) ? -1 : v[a] - v[b]));
    idx.forEach((c, k) => {
      values[r * cols + k] = v[c];
      channelOf[r * cols + k] = c;
      if (!Number.isNaN(v[c])) abs.push(Math.abs(v[c]));
    });
  });
  abs.sort((a, b) => a - b);
  const p98 = abs.length ? abs[Math.min(abs.length - 1, Math.floor(0.98 * abs.length))] : 0;
  return { values, rows, cols, names: layers.map((l) => l.name), channelOf, p98 };
}

/** A round colour limit ≥ x (0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5 × 10^k). */
export function niceLimit(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) return 1;
  const e = Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * 10 ** e >= x) return m * 10 ** e;
  return 10 ** (e + 1);
}

/**
 * Channels whose weights all round to zero under scale `s` (symmetric or not, the
 * dequantized value is round(w/s)·s when it is not clipped): max |w| ≤ s/2. Ties round
 * to even, i.e. to 0, so ≤ is right. A channel that is all zero in FP32 does not count.
 */
export function roundsToZero(min: number, max: number, scale: number): boolean {
  const m = Math.max(Math.abs(min), Math.abs(max));
  return m > 0 && m <= scale / 2;
}

/** Tick values for a symlog axis over [min, max]: 0 and ± the `decades` largest powers of ten inside. */
export function symlogTicks(max: number, min = 0, decades = 5): number[] {
  const out: number[] = [];
  const hi = Math.max(Math.abs(max), Math.abs(min));
  if (!(hi > 0) || !Number.isFinite(hi)) return [0];
  const top = Math.floor(Math.log10(hi));
  for (let e = top; e > top - decades; e--) {
    const v = 10 ** e;
    if (v <= max) out.push(v);
    if (-v >= min) out.push(-v);
  }
  out.push(0);
  return out.sort((a, b) => a - b);
}

/** The abbreviations shortLayerName uses, for the legend under a chart. */
export const LAYER_ABBREVIATIONS = 'b = block, dw = depthwise, exp = expand, proj = project, fc = fully connected';

/**
 * A readable abbreviation of a layer's name for a chart axis, where the full name
 * ("block 16 · project 1×1 (Conv_94)") does not fit: "b16 proj 1×1". The full name stays in
 * the tooltip and in the selected layer's detail.
 */
export function shortLayerName(name: string): string {
  return name
    .replace(/ \(.*\)$/, '')
    .replace(/^block (\d+) · /, 'b$1 ')
    .replace(/ · /g, ' ')
    .replace('depthwise', 'dw')
    .replace('project', 'proj')
    .replace('expand', 'exp')
    .replace('shortcut', 'short')
    .replace('fully connected', 'fc');
}

/** Pixels an axis needs for tick labels of `chars` characters at an 11 px font (rotated labels). */
export function labelRoom(chars: number): number {
  return Math.ceil(chars * 6.3) + 8;
}
