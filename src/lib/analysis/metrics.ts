/**
 * Error and drift metrics from reduction scalars, so the engine only ever returns a few
 * numbers per layer: SQNR, cosine and MSE from Σref², Σ(q−ref)², Σref·q, Σq² and the
 * element count; channel mean/std from batch means of x and x²; weight statistics
 * (SQNR, per-channel ranges, vanished channels) on initializers. Accumulates in float64.
 * Pure math: no engine, no graph, no DOM.
 */
import type { QParams } from '../quant/types.ts';
import type { DriftSummary, ErrorMetrics } from './types.ts';

/** Running sums of one ref-vs-quantized comparison over sub-batches (float64). */
export interface ErrorSums {
  refSq: number;
  diffSq: number;
  cross: number;
  qSq: number;
  count: number;
}

export function emptyErrorSums(): ErrorSums {
  return { refSq: 0, diffSq: 0, cross: 0, qSq: 0, count: 0 };
}

export function addErrorSums(into: ErrorSums, b: ErrorSums): void {
  into.refSq += b.refSq;
  into.diffSq += b.diffSq;
  into.cross += b.cross;
  into.qSq += b.qSq;
  into.count += b.count;
}

/**
 * SQNR (dB), cosine similarity and MSE from accumulated sums. Same conventions as
 * src/lib/quant/metrics.ts: SQNR +Infinity when there is no noise, cosine 1 when both
 * are all zero and 0 when only one is, MSE 0 for no elements.
 */
export function errorMetrics(s: ErrorSums): ErrorMetrics {
  const sqnrDb = s.diffSq === 0 ? Infinity : 10 * Math.log10(s.refSq / s.diffSq);
  let cosine: number;
  if (s.refSq === 0 && s.qSq === 0) cosine = 1;
  else if (s.refSq === 0 || s.qSq === 0) cosine = 0;
  else cosine = Math.max(-1, Math.min(1, s.cross / Math.sqrt(s.refSq * s.qSq)));
  return { sqnrDb, cosine, mse: s.count ? s.diffSq / s.count : 0 };
}

/** The four sums computed directly from two arrays (what the graph reductions compute). */
export function errorSumsOf(ref: ArrayLike<number>, q: ArrayLike<number>): ErrorSums {
  const s = emptyErrorSums();
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i];
    const d = q[i] - r;
    s.refSq += r * r;
    s.diffSq += d * d;
    s.cross += r * q[i];
    s.qSq += q[i] * q[i];
  }
  s.count = ref.length;
  return s;
}

/** Per-channel running means of x and x² over images (each batch weighted by its image count). */
export class ChannelMoments {
  readonly mean: Float64Array;
  readonly meanSq: Float64Array;
  private weight = 0;
  constructor(readonly channels: number) {
    this.mean = new Float64Array(channels);
    this.meanSq = new Float64Array(channels);
  }
  /** `mean` / `meanSq`: per-channel means over one batch of `images` images. */
  add(mean: ArrayLike<number>, meanSq: ArrayLike<number>, images: number): void {
    const w = this.weight + images;
    const a = this.weight / w;
    const b = images / w;
    for (let c = 0; c < this.channels; c++) {
      this.mean[c] = a * this.mean[c] + b * mean[c];
      this.meanSq[c] = a * this.meanSq[c] + b * meanSq[c];
    }
    this.weight = w;
  }
  get images(): number {
    return this.weight;
  }
  /** population standard deviation per channel (0 where rounding makes the variance negative) */
  std(): Float64Array {
    const s = new Float64Array(this.channels);
    for (let c = 0; c < this.channels; c++) s[c] = Math.sqrt(Math.max(0, this.meanSq[c] - this.mean[c] * this.mean[c]));
    return s;
  }
}

/**
 * Drift of (mean, std) against a reference (refMean, refStd): mean over channels of
 * |μ − μ_ref|/σ_ref and of σ/σ_ref. Channels whose σ_ref is below `eps` times the
 * largest σ_ref (dead channels) are left out; `channels` says how many were counted.
 */
export function driftSummary(
  mean: ArrayLike<number>,
  std: ArrayLike<number>,
  refMean: ArrayLike<number>,
  refStd: ArrayLike<number>,
  eps = 1e-6,
): DriftSummary {
  let maxStd = 0;
  for (let c = 0; c < refStd.length; c++) maxStd = Math.max(maxStd, refStd[c]);
  const floor = Math.max(eps * maxStd, 1e-30);
  let shift = 0;
  let ratio = 0;
  let n = 0;
  for (let c = 0; c < refStd.length; c++) {
    if (!(refStd[c] > floor)) continue;
    shift += Math.abs(mean[c] - refMean[c]) / refStd[c];
    ratio += std[c] / refStd[c];
    n++;
  }
  return { meanAbsShift: n ? shift / n : 0, stdRatio: n ? ratio / n : 1, channels: n };
}

/** Per-output-channel min/max of a weight tensor (channel axis `axis`). */
export function channelRanges(
  data: Float32Array,
  dims: readonly number[],
  axis: number,
): { min: Float64Array; max: Float64Array } {
  const C = dims[axis];
  let inner = 1;
  for (let k = axis + 1; k < dims.length; k++) inner *= dims[k];
  const min = new Float64Array(C).fill(Infinity);
  const max = new Float64Array(C).fill(-Infinity);
  for (let i = 0; i < data.length; i++) {
    const c = Math.floor(i / inner) % C;
    const v = data[i];
    if (v < min[c]) min[c] = v;
    if (v > max[c]) max[c] = v;
  }
  return { min, max };
}

/** Output channels whose quantized weights are all zero while the FP32 weights are not. */
export function vanishedChannels(fp: Float32Array, q: Float32Array, dims: readonly number[], axis: number): number {
  const C = dims[axis];
  let inner = 1;
  for (let k = axis + 1; k < dims.length; k++) inner *= dims[k];
  const fpNonZero = new Uint8Array(C);
  const qNonZero = new Uint8Array(C);
  for (let i = 0; i < fp.length; i++) {
    const c = Math.floor(i / inner) % C;
    if (fp[i] !== 0) fpNonZero[c] = 1;
    if (q[i] !== 0) qNonZero[c] = 1;
  }
  let n = 0;
  for (let c = 0; c < C; c++) if (fpNonZero[c] && !qNonZero[c]) n++;
  return n;
}

/** Bits of a quantizer from its integer range (qmax − qmin + 1 levels, narrow range counted as full). */
export function bitsOf(qp: Pick<QParams, 'qmin' | 'qmax'>): number {
  return Math.ceil(Math.log2(qp.qmax - qp.qmin + 1));
}
