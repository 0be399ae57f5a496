/**
 * MQBench observers: turn calibration statistics into clipping ranges [min, max].
 *
 * Why it exists: the choice of clipping range is the main knob of post-training
 * quantization, and each MQBench backend names an observer. This module reproduces
 * the MQBench (mqbench/observer.py) observers on the statistics this app can afford
 * to collect: whole weight tensors, and per-batch min/max/sum/sum² plus an
 * equal-width histogram for activations (see ActivationStats). Where MQBench reads
 * whole activations we read the histogram (bin centers weighted by counts); each
 * function says so.
 *
 * Weights are one "batch": the EMA observers reduce to their plain form on weights
 * (ema-minmax → minmax, ema-mse → mse, ema-quantile → one batch of the quantile rule).
 *
 * Must not: import ORT, DOM, Svelte, idb or node: modules. Ranges are raw clipping
 * bounds; computeQParams widens them to contain 0 and applies the spec.
 */
import { QpError } from '../util/errors.ts';
import { foldAbsHistogram, histogramOf, histogramQuantile, histogramTotal, sumHistograms } from './histogram.ts';
import { channelLayout, computeQParams, forEachChannelRun } from './quantizer.ts';
import { roundHalfToEven } from './round.ts';
import type { ActivationStats, BatchStats, ObserverName, QuantSpec, Range } from './types.ts';
import type { ObserverChoice } from '../config/names.ts';

/** Tunables of the observers (all unitless). */
export interface ObserverOptions {
  /** EMA ratio of ema-minmax / ema-mse / ema-quantile: new = r*old + (1-r)*batch (MQBench 0.9) */
  emaRatio: number;
  /** percentile observer: clip at the q and 1-q quantiles */
  percentile: number;
  /** clipstd observer: the range covers mean ± stdNum * std (MQBench std_scale 2.6) */
  stdNum: number;
  /** mse observer: the p of the Lp error (MQBench MSEObserver p = 2.0) */
  mseP: number;
  /** mse observer: number of candidates (1 - 0.01 i), i < mseSteps, for per-tensor ranges (MQBench 95) */
  mseSteps: number;
  /** kl observer: bins of the |x| histogram (TensorRT 2048) */
  klBins: number;
}

export const DEFAULT_OBSERVER_OPTIONS: Readonly<ObserverOptions> = Object.freeze({
  emaRatio: 0.9,
  percentile: 0.9999,
  stdNum: 2.6,
  mseP: 2.0,
  mseSteps: 95,
  klBins: 2048,
});

/** MQBench MSEObserver searches 80 candidates per channel (95 per tensor). */
export const MSE_STEPS_PER_CHANNEL = 80;
/** MQBench EMAQuantileObserver defaults. */
export const EMA_QUANTILE_THRESHOLD = 0.99999;
export const EMA_QUANTILE_BINS = 2048;
/** Weight KL: at most this many thresholds are evaluated per channel (see klWeightRange). */
const KL_WEIGHT_CANDIDATES = 64;

function resolveOptions(opts?: Partial<ObserverOptions>): ObserverOptions {
  const o = { ...DEFAULT_OBSERVER_OPTIONS, ...opts };
  if (!(o.emaRatio >= 0 && o.emaRatio < 1)) bad(`The EMA ratio must be in [0, 1), got ${o.emaRatio}.`);
  if (!(o.percentile > 0.5 && o.percentile <= 1)) bad(`The percentile must be in (0.5, 1], got ${o.percentile}.`);
  if (!(o.stdNum > 0)) bad(`The number of standard deviations must be positive, got ${o.stdNum}.`);
  if (!(o.mseP > 0)) bad(`The MSE observer's p must be positive, got ${o.mseP}.`);
  if (!(Number.isInteger(o.mseSteps) && o.mseSteps >= 1 && o.mseSteps <= 100)) {
    bad(`The MSE observer's step count must be a whole number from 1 to 100, got ${o.mseSteps}.`);
  }
  if (!(Number.isInteger(o.klBins) && o.klBins >= 16)) bad(`The KL observer needs at least 16 bins, got ${o.klBins}.`);
  return o;
}

function bad(message: string): never {
  throw new QpError('CONFIG_INVALID', message);
}

function rangeOf(min: ArrayLike<number>, max: ArrayLike<number>): Range {
  return { min: Float32Array.from(min), max: Float32Array.from(max) };
}

// ---------------------------------------------------------------------------
// Shared search kernels
// ---------------------------------------------------------------------------

/** A per-tensor copy of `spec` (observer searches evaluate one channel at a time). */
function perTensor(spec: QuantSpec): QuantSpec {
  // Stryker disable next-line UnaryOperator: a per-tensor spec reads no axis
  return { ...spec, granularity: 'per-tensor', axis: -1 };
}

/** Unweighted Lp error kernel (monomorphic: Float64Array only). */
function lpErrorPlain(v: Float64Array, s: number, qlo: number, qhi: number, p: number): number {
  const fround = Math.fround;
  const n = v.length;
  let err = 0;
  for (let i = 0; i < n; i++) {
    const x = v[i];
    let q = roundHalfToEven(fround(x / s));
    // Stryker disable next-line EqualityOperator: a code at its bound is kept either way
    q = q < qlo ? qlo : q > qhi ? qhi : q;
    const e = Math.abs(fround(q * s) - x);
    // Stryker disable next-line ConditionalExpression: a shortcut, e ** 2 is e * e
    err += p === 2 ? e * e : e ** p;
  }
  // Stryker disable next-line ConditionalExpression,EqualityOperator,ArithmeticOperator: only the order of the candidates' errors counts, and n is the same for all (no values: NaN or 0 alike keep the first candidate)
  return n > 0 ? err / n : 0;
}

/** Weighted Lp error kernel (histogram bin centers and counts). */
function lpErrorWeighted(v: Float64Array, w: Float64Array, s: number, qlo: number, qhi: number, p: number): number {
  const fround = Math.fround;
  const n = v.length;
  let err = 0;
  let total = 0;
  // Stryker disable next-line EqualityOperator: w[n] is undefined and skipped below
  for (let i = 0; i < n; i++) {
    const wi = w[i];
    // Stryker disable next-line ConditionalExpression,EqualityOperator: a weight of 0 adds nothing to either sum; skipping it only saves time
    if (!(wi > 0)) continue;
    const x = v[i];
    let q = roundHalfToEven(fround(x / s));
    // Stryker disable next-line EqualityOperator: a code at its bound is kept either way
    q = q < qlo ? qlo : q > qhi ? qhi : q;
    const e = Math.abs(fround(q * s) - x);
    // Stryker disable next-line ConditionalExpression: e ** 2 equals e * e in every bit (V8); the branch saves a pow call per bin
    err += wi * (p === 2 ? e * e : e ** p);
    total += wi;
  }
  // Stryker disable next-line ConditionalExpression,EqualityOperator,ArithmeticOperator: as in lpErrorPlain, total is the same for every candidate
  return total > 0 ? err / total : 0;
}

function asF64(a: ArrayLike<number>): Float64Array {
  return a instanceof Float64Array ? a : Float64Array.from(a);
}

/**
 * Mean Lp error (data units to the power p) of fake-quantizing `v` (optionally weighted
 * by `w`, e.g. histogram counts) with the real quantizer of `spec` for the clipping
 * range [lo, hi]: same scale/zero point as computeQParams and the same float32 formula
 * as fakeQuantize. Throws like computeQParams.
 */
function lpErrorOn(
  v: Float64Array,
  w: Float64Array | null,
  lo: number,
  hi: number,
  spec: QuantSpec,
  p: number,
): number {
  const qp = computeQParams({ min: new Float32Array([lo]), max: new Float32Array([hi]) }, spec);
  const s = qp.scale[0];
  const zp = qp.zeroPoint[0];
  return w
    ? lpErrorWeighted(v, w, s, qp.qmin - zp, qp.qmax - zp, p)
    : lpErrorPlain(v, s, qp.qmin - zp, qp.qmax - zp, p);
}

/**
 * MQBench MSEObserver.mse: candidates [min*(1-0.01 i), max*(1-0.01 i)], i < steps,
 * keep the first with the lowest Lp error (strict <, so ties keep the wider range).
 * The error uses the real quantizer of `spec` (symmetric / unsigned / PoT respected).
 * Returns [min, max] in data units. Throws like computeQParams.
 */
export function mseSearch(
  values: ArrayLike<number>,
  weights: ArrayLike<number> | null,
  min: number,
  max: number,
  spec: QuantSpec,
  steps: number,
  p: number,
): [number, number] {
  // Stryker disable next-line ConditionalExpression: a shortcut; every candidate of [0, 0] is [0, 0]
  if (min === 0 && max === 0) return [0, 0];
  const v = asF64(values);
  const w = weights ? asF64(weights) : null;
  const ts = perTensor(spec);
  let best = Infinity;
  let bestMin = min;
  let bestMax = max;
  for (let i = 0; i < steps; i++) {
    const f = 1 - i * 0.01;
    const lo = min * f;
    const hi = max * f;
    const score = lpErrorOn(v, w, lo, hi, ts, p);
    if (score < best) {
      best = score;
      bestMin = lo;
      bestMax = hi;
    }
  }
  return [bestMin, bestMax];
}

/**
 * MXNet `_smooth_distribution` (also TensorRT's entropy calibrator): move eps of mass
 * to each zero bin, taken evenly from the non-zero bins, in place. Returns false when
 * every bin is zero. Deviation: folded |x| histograms hold fractional counts, so eps is
 * lowered where taking it would make a bin non-positive. Only the first n bins are read and
 * written. Exported for its tests.
 */
export function smooth(h: Float64Array, n: number, eps = 0.0001): boolean {
  let zeros = 0;
  let minNonZero = Infinity;
  for (let k = 0; k < n; k++) {
    const v = h[k];
    if (v === 0) {
      zeros++;
      continue;
    }
    // Stryker disable next-line EqualityOperator: an equal value changes nothing
    if (v < minNonZero) minNonZero = v;
  }
  const nonZeros = n - zeros;
  if (nonZeros === 0) return false;
  // Stryker disable next-line ConditionalExpression: a shortcut; with no empty bin e1 is 0 and the loop below changes nothing
  if (zeros === 0) return true;
  let e = eps;
  let e1 = (e * zeros) / nonZeros;
  // Stryker disable next-line EqualityOperator: at equality the cap sets e1 to its own value (and e back to eps)
  if (e1 >= minNonZero * 0.5) {
    e1 = minNonZero * 0.5;
    e = (e1 * nonZeros) / zeros;
  }
  for (let k = 0; k < n; k++) h[k] = h[k] === 0 ? e : h[k] - e1;
  return true;
}

/**
 * TensorRT entropy calibration ("8-bit Inference with TensorRT", Migacz 2017), in the
 * form of MXNet `_get_optimal_threshold` applied to a histogram of |x|:
 * for each candidate i in [levels, bins] (every `stride`-th, plus bins itself):
 * P = hist[0..i) with all counts above folded into P[i-1]; Q = hist[0..i) merged into
 * `levels` groups (the last takes the remainder) and expanded back uniformly over the
 * bins where P is non-zero; both smoothed (eps 1e-4); pick the i minimizing KL(P||Q).
 * With opts.zeroBin 'neighbour' bin 0 is first set to bin 1's count and ties keep the
 * last candidate (NVIDIA); opts.startBin moves the first candidate up (NVIDIA: 128).
 * Returns the threshold i * binWidth (the upper edge of bin i-1, as MXNet), in data
 * units. When levels >= bins there is nothing to search and absHi is returned.
 * Throws QpError INTERNAL when the histogram is empty.
 */
export function klThreshold(
  rawHist: Float64Array,
  absHi: number,
  levels: number,
  stride = 1,
  opts: KlSearchOptions = {},
): number {
  const bins = rawHist.length;
  if (!(histogramTotal(rawHist) > 0)) throw new QpError('INTERNAL', 'The KL observer got an empty histogram.');
  // Stryker disable next-line ConditionalExpression,EqualityOperator: a shortcut; with levels >= bins the only candidate is bins itself
  if (levels >= bins) return absHi;
  const absHist = opts.zeroBin === 'neighbour' ? flattenZeroBin(rawHist) : rawHist;
  // only exact zeros: nothing to clip (the search below would skip every candidate as well)
  // Stryker disable next-line ConditionalExpression,EqualityOperator: see above
  if (!(histogramTotal(absHist) > 0)) return absHi;
  const first = Math.min(bins, Math.max(levels, opts.startBin ?? levels));
  const w = absHi / bins;
  // suffix[i] = sum of hist[i..bins)
  const suffix = new Float64Array(bins + 1);
  // Stryker disable next-line EqualityOperator: suffix[0] is never read (candidates start at 1 or more)
  for (let k = bins - 1; k >= 0; k--) suffix[k] = suffix[k + 1] + absHist[k];
  const p = new Float64Array(bins);
  const q = new Float64Array(bins);
  let bestKl = Infinity;
  let bestI = bins;
  const step = Math.max(1, Math.floor(stride));
  for (let i = first; i <= bins; i = i === bins ? bins + 1 : Math.min(bins, i + step)) {
    // Stryker disable next-line EqualityOperator: p[i] lies past this candidate and is rewritten before a later one reads it
    for (let k = 0; k < i; k++) p[k] = absHist[k];
    p[i - 1] += suffix[i];
    const merged = Math.floor(i / levels);
    for (let j = 0; j < levels; j++) {
      const start = j * merged;
      const stop = j === levels - 1 ? i : start + merged;
      let sum = 0;
      let nonZero = 0;
      for (let k = start; k < stop; k++) {
        sum += absHist[k];
        if (p[k] !== 0) nonZero++;
      }
      // Stryker disable next-line ConditionalExpression,EqualityOperator: with no non-zero bin every q[k] below is 0 whatever v is
      const v = nonZero > 0 ? sum / nonZero : 0;
      // Stryker disable next-line EqualityOperator: q[stop] is the next group's first bin, which it rewrites (the last group's lies past i)
      for (let k = start; k < stop; k++) q[k] = p[k] !== 0 ? v : 0;
    }
    if (!smooth(p, i)) continue;
    let kl: number;
    if (!smooth(q, i)) kl = Infinity;
    else {
      let ps = 0;
      let qs = 0;
      // Stryker disable next-line EqualityOperator: p[i] and q[i] are 0 (no candidate writes past itself)
      for (let k = 0; k < i; k++) {
        ps += p[k];
        qs += q[k];
      }
      kl = 0;
      // Stryker disable next-line EqualityOperator: as above
      for (let k = 0; k < i; k++) {
        // Stryker disable next-line ArithmeticOperator: ps is the same for every candidate (outliers fold into P, smoothing keeps the sum), so p·ps only scales and shifts the KL
        const pk = p[k] / ps;
        // Stryker disable next-line ConditionalExpression,EqualityOperator: after smoothing every pk is positive
        if (pk > 0) kl += pk * Math.log(pk / (q[k] / qs));
      }
    }
    // NVIDIA keeps the last minimum (ties go to the wider threshold); MXNet the first.
    if (opts.zeroBin === 'neighbour' ? kl <= bestKl : kl < bestKl) {
      bestKl = kl;
      bestI = i;
    }
  }
  return bestI * w;
}

/** Options of the KL threshold search (see klThreshold). */
export interface KlSearchOptions {
  /**
   * 'keep' (MXNet): the histogram as given. 'neighbour' (NVIDIA pytorch-quantization
   * `_compute_amax_entropy`): bin 0's count is replaced by bin 1's before the search.
   */
  zeroBin?: 'keep' | 'neighbour';
  /** first candidate bin (NVIDIA: 128 of 2048); never below `levels` */
  startBin?: number;
}

/**
 * Why the zero bin is flattened: after ReLU/ReLU6 most activations are exactly 0, so the
 * |x| histogram's bin 0 holds most of the mass. KL(P||Q) is then dominated by how well Q
 * reproduces that one spike, which the merge into `levels` groups does best at the
 * smallest candidate: thresholds collapse and clip most of the signal (TensorRT W8A8 on
 * MobileNet-V2 lost nearly all its accuracy; docs/results.md). The zero value is
 * represented exactly by every candidate grid, so its count carries no information about
 * the threshold; NVIDIA sets it to its neighbour's count. Returns a copy.
 */
function flattenZeroBin(hist: Float64Array): Float64Array {
  const h = Float64Array.from(hist);
  // Stryker disable next-line ConditionalExpression,EqualityOperator: klThreshold returns before flattening a histogram of fewer bins than levels (at least 1)
  if (h.length > 1) h[0] = h[1];
  return h;
}

/**
 * Activation KL search settings: NVIDIA's entropy calibrator (zero bin flattened, the
 * search starting at 128 of 2048 bins, scaled with the bin count).
 */
function activationKlOptions(bins: number): KlSearchOptions {
  return { zeroBin: 'neighbour', startBin: Math.round((128 * bins) / 2048) };
}

/** Positive levels of a spec for KL: 2^(b-1) signed (TensorRT: 128 for int8), 2^b unsigned. */
function klLevels(spec: QuantSpec): number {
  return spec.signed ? 2 ** (spec.bits - 1) : 2 ** spec.bits;
}

/**
 * MQBench EMAQuantileObserver, one batch: with a histogram of |x| (bins over
 * [0, absMax]) find the first bin where the cumulative count reaches threshold * total;
 * clip = (i + 0.5) * absMax / bins; the batch range is [max(min, -clip), min(max, clip)].
 * Deviation: MQBench multiplies by max_val_cur / bins (the signed max) while its
 * histogram spans max|x|; we use max|x|, the histogram's real bin width.
 */
function quantileClip(absHist: Float64Array, absMax: number, threshold: number): number {
  const bins = absHist.length;
  const total = histogramTotal(absHist);
  let cum = 0;
  // Stryker disable next-line EqualityOperator: absHist[bins] is undefined, and the loop ends with the return below
  for (let i = 0; i < bins; i++) {
    if (cum + absHist[i] >= threshold * total) return ((i + 0.5) * absMax) / bins;
    cum += absHist[i];
  }
  return absMax;
}

/**
 * [lo, hi] clipped to [-clip, clip]. A clip below every |x| (all values on one side of 0,
 * closer together than half a bin of the |x| histogram) would turn the range around
 * (min > max); the range is then kept as it is.
 */
function clipAt(lo: number, hi: number, clip: number): [number, number] {
  const l = Math.max(lo, -clip);
  const h = Math.min(hi, clip);
  // Stryker disable next-line EqualityOperator: l = h only where lo = hi (the clip is then above |lo|): both answers are [lo, hi]
  return l <= h ? [l, h] : [lo, hi];
}

// ---------------------------------------------------------------------------
// Weights
// ---------------------------------------------------------------------------

/** Contiguous copies of each channel's values (per-tensor: the data itself). */
function gatherChannels(data: Float32Array, dims: readonly number[], spec: QuantSpec): Float32Array[] {
  const axis = spec.granularity === 'per-channel' ? spec.axis : -1;
  const layout = channelLayout(dims, axis, data.length);
  // Stryker disable next-line ConditionalExpression: a shortcut; gathering one whole channel copies the data
  if (layout.channels === 1 && layout.outer === 1) return [data];
  const per = layout.outer * layout.inner;
  const out: Float32Array[] = [];
  for (let c = 0; c < layout.channels; c++) out.push(new Float32Array(per));
  const fill = new Int32Array(layout.channels);
  forEachChannelRun(layout, (c, start, end) => {
    out[c].set(data.subarray(start, end), fill[c]);
    fill[c] += end - start;
  });
  return out;
}

function minMaxOf(v: Float32Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  // Stryker disable next-line EqualityOperator: v[length] is undefined and changes neither
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    // Stryker disable next-line EqualityOperator: an equal value changes nothing
    if (x < lo) lo = x;
    // Stryker disable next-line EqualityOperator: an equal value changes nothing
    if (x > hi) hi = x;
  }
  return lo <= hi ? [lo, hi] : [0, 0];
}

/** numpy-style linear-interpolated quantile of sorted values. */
function sortedQuantile(sorted: Float32Array, q: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const pos = q * (n - 1);
  const k = Math.floor(pos);
  const frac = pos - k;
  return k + 1 < n ? sorted[k] + frac * (sorted[k + 1] - sorted[k]) : sorted[n - 1];
}

function absHistogramOf(v: Float32Array, bins: number): { hist: Float64Array; absMax: number } {
  const abs = new Float32Array(v.length);
  let absMax = 0;
  // Stryker disable next-line EqualityOperator: v[length] is undefined; abs[length] is past the array's end
  for (let i = 0; i < v.length; i++) {
    const a = Math.abs(v[i]);
    abs[i] = a;
    // Stryker disable next-line EqualityOperator: an equal value changes nothing
    if (a > absMax) absMax = a;
  }
  return { hist: histogramOf(abs, 0, absMax, bins), absMax };
}

/** One channel `v` (values, its min and max) of a weight tensor, for a weight range function. */
interface WeightChannel {
  v: Float32Array;
  lo: number;
  hi: number;
  spec: QuantSpec;
  o: ObserverOptions;
  perChannel: boolean;
}

function weightMinMax({ lo, hi }: WeightChannel): [number, number] {
  return [lo, hi];
}

function weightMse({ v, lo, hi, spec, o, perChannel }: WeightChannel): [number, number] {
  return mseSearch(
    v,
    null,
    lo,
    hi,
    spec,
    perChannel ? Math.min(o.mseSteps, MSE_STEPS_PER_CHANNEL) : o.mseSteps,
    o.mseP,
  );
}

function weightPercentile({ v, o }: WeightChannel): [number, number] {
  const sorted = Float32Array.from(v).sort();
  return [sortedQuantile(sorted, 1 - o.percentile), sortedQuantile(sorted, o.percentile)];
}

function weightEmaQuantile({ v, lo, hi }: WeightChannel): [number, number] {
  const { hist, absMax } = absHistogramOf(v, EMA_QUANTILE_BINS);
  // Stryker disable next-line ConditionalExpression: a shortcut; an all-zero channel's clip is 0 and its range [0, 0] anyway
  if (absMax === 0) return [0, 0];
  const clip = quantileClip(hist, absMax, EMA_QUANTILE_THRESHOLD);
  return clipAt(lo, hi, clip);
}

function weightClipStd({ v, lo, hi, o }: WeightChannel): [number, number] {
  const n = v.length;
  if (n === 0) return [0, 0];
  let sum = 0;
  for (let i = 0; i < n; i++) sum += v[i];
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (v[i] - mean) ** 2;
  const std = n > 1 ? Math.sqrt(ss / (n - 1)) : 0; // torch.std: unbiased
  return [Math.min(mean - o.stdNum * std, lo), Math.max(mean + o.stdNum * std, hi)];
}

function weightKl({ v, lo, spec, o }: WeightChannel): [number, number] {
  const levels = klLevels(spec);
  // Our choice (TensorRT calibrates only activations by entropy): a per-channel
  // weight slice is small, so use max(256, 4*levels) bins (capped at klBins) and at
  // most KL_WEIGHT_CANDIDATES thresholds to keep thousands of channels cheap.
  const bins = Math.min(o.klBins, Math.max(256, 4 * levels));
  const { hist, absMax } = absHistogramOf(v, bins);
  // Stryker disable next-line ConditionalExpression: a shortcut; the threshold of an all-zero channel is 0 times the bin width
  if (absMax === 0) return [0, 0];
  const stride = Math.max(1, Math.ceil((bins - levels) / KL_WEIGHT_CANDIDATES));
  const t = klThreshold(hist, absMax, levels, stride);
  return lo >= 0 ? [0, t] : [-t, t];
}

/**
 * Clipping range of a weight tensor `data` of shape `dims` (float32, any units), per
 * channel along spec.axis (arrays of length dims[axis]) or per tensor (length 1).
 * - minmax / ema-minmax: MQBench MinMaxObserver, per-channel min and max.
 * - mse / ema-mse: MQBench MSEObserver on the actual values: 80 candidates
 *   (1 - 0.01 i) per channel, mseSteps (95) per tensor, Lp error with p = mseP.
 * - percentile: exact (1-q, q) quantiles of the values, linear interpolation (numpy).
 * - ema-quantile: MQBench EMAQuantileObserver rule for one batch (|x| histogram of
 *   2048 bins, threshold 0.99999); MQBench allows it per-tensor only, we allow both.
 * - clipstd: MQBench ClipStdObserver, [min(mean - k*std, min), max(mean + k*std, max)],
 *   k = stdNum (2.6), unbiased std: the range never clips, it widens a narrow min/max.
 * - kl: TensorRT entropy threshold of |x| (see klThreshold), [-t, t] or [0, t] when the
 *   channel is non-negative.
 * Throws QpError INTERNAL on a shape mismatch, CONFIG_INVALID on bad options/bits.
 */
export function observeWeight(
  name: ObserverChoice,
  data: Float32Array,
  dims: readonly number[],
  spec: QuantSpec,
  opts?: Partial<ObserverOptions>,
): Range {
  const o = resolveOptions(opts);
  const channels = gatherChannels(data, dims, spec);
  const perChannel = spec.granularity === 'per-channel';
  const min = new Float32Array(channels.length);
  const max = new Float32Array(channels.length);
  const range = observerEntry(name).weightRange;
  for (let c = 0; c < channels.length; c++) {
    const v = channels[c];
    const [cmin, cmax] = minMaxOf(v);
    const [lo, hi] = range({ v, lo: cmin, hi: cmax, spec, o, perChannel });
    min[c] = lo;
    max[c] = hi;
  }
  return { min, max };
}

// ---------------------------------------------------------------------------
// Activations
// ---------------------------------------------------------------------------

function requireHist(stats: ActivationStats, name: ObserverName): { lo: number; hi: number } {
  const lo = stats.histLo;
  const hi = stats.histHi;
  if (lo === undefined || hi === undefined || stats.batches.some((b) => !b.hist)) {
    throw new QpError('INTERNAL', `The ${name} observer needs histograms, but the calibration collected none.`);
  }
  return { lo, hi };
}

/** MQBench EMA update: the first batch initializes, then r*old + (1-r)*batch. */
function ema(batches: readonly [number, number][], r: number): [number, number] {
  let [lo, hi] = batches[0];
  for (let k = 1; k < batches.length; k++) {
    lo = lo * r + batches[k][0] * (1 - r);
    hi = hi * r + batches[k][1] * (1 - r);
  }
  return [lo, hi];
}

/** Bin centers and counts of the non-empty bins (the weighted sample MSE evaluates). */
function histSample(hist: Float64Array, lo: number, hi: number): { values: Float64Array; weights: Float64Array } {
  let n = 0;
  // Stryker disable next-line EqualityOperator,ConditionalExpression: an extra entry of weight 0 (or past the end) changes no error
  for (let k = 0; k < hist.length; k++) if (hist[k] > 0) n++;
  const values = new Float64Array(n);
  const weights = new Float64Array(n);
  const w = (hi - lo) / hist.length;
  let j = 0;
  // Stryker disable next-line EqualityOperator: hist[length] is undefined and skipped
  for (let k = 0; k < hist.length; k++) {
    if (hist[k] > 0) {
      values[j] = lo + (k + 0.5) * w;
      weights[j++] = hist[k];
    }
  }
  return { values, weights };
}

function batchMse(
  b: BatchStats,
  hist: Float64Array,
  lo: number,
  hi: number,
  spec: QuantSpec,
  o: ObserverOptions,
): [number, number] {
  const { values, weights } = histSample(hist, lo, hi);
  return mseSearch(values, weights, b.min, b.max, spec, o.mseSteps, o.mseP);
}

/**
 * Clipping range of one activation tensor from its calibration statistics (per tensor;
 * arrays of length 1). Semantics and sources:
 * - minmax: MQBench MinMaxObserver, min of batch mins / max of batch maxes.
 * - ema-minmax: MQBench EMAMinMaxObserver: the first batch initializes, then
 *   min = r*min + (1-r)*batchMin (r = emaRatio 0.9), same for max.
 * - mse: MQBench MSEObserver grid (candidates global [min, max] * (1 - 0.01 i),
 *   i < mseSteps = 95, Lp error p = mseP with the real quantizer of `spec`), evaluated on
 *   the summed histogram (bin centers weighted by counts): O(bins × steps). Deviation:
 *   MQBench keeps the running min/max of per-batch optima; we optimize once on the
 *   pooled histogram (identical for a single batch).
 * - ema-mse: MQBench EMAMSEObserver: the same search per batch, then EMA.
 * - percentile: [quantile(1-q), quantile(q)] of the summed histogram, q = percentile.
 * - ema-quantile: MQBench EMAQuantileObserver per batch (|x| histogram of 2048 bins over
 *   [0, batch max|x|] folded from the signed histogram, threshold 0.99999), then EMA.
 * - clipstd: MQBench ClipStdObserver: mean ± stdNum·std (2.6, unbiased) from the pooled
 *   sum / sum² / count, united with the global [min, max] (torch.minimum(mean - k·std, min)):
 *   it never clips. Deviation: MQBench keeps only the last batch's statistics; we pool all
 *   calibration batches, so the range does not depend on the batch order. (Clipping at
 *   mean ± k·σ instead, as the name suggests, lost 64 points at W8A8 on MobileNet-V2:
 *   ReLU6 outputs are far from Gaussian.)
 * - kl: TensorRT entropy calibration on the summed histogram folded to |x| (klBins bins),
 *   see klThreshold, with NVIDIA's zero-bin handling (bin 0 set to bin 1, candidates
 *   from bin 128 of 2048); [-t, t], or [0, t] when the global min is >= 0.
 * Throws QpError CONFIG_INVALID for per-channel activation specs or bad options,
 * INTERNAL when there are no batches or a histogram observer has no histograms.
 */
export function observeActivation(
  name: ObserverChoice,
  stats: ActivationStats,
  spec: QuantSpec,
  opts?: Partial<ObserverOptions>,
): Range {
  const o = resolveOptions(opts);
  if (spec.granularity !== 'per-tensor') {
    bad('Activations are quantized per tensor; a per-channel activation scheme is not supported.');
  }
  const batches = stats.batches;
  if (batches.length === 0) throw new QpError('INTERNAL', 'No calibration batches were observed for an activation.');
  let gmin = Infinity;
  let gmax = -Infinity;
  for (const b of batches) {
    // Stryker disable next-line EqualityOperator: an equal value changes nothing
    if (b.min < gmin) gmin = b.min;
    // Stryker disable next-line EqualityOperator: an equal value changes nothing
    if (b.max > gmax) gmax = b.max;
  }
  const e = observerEntry(name);
  const [lo, hi] = e.activationRange({ name: e.name, stats, batches, gmin, gmax, spec, o });
  return rangeOf([lo], [hi]);
}

/** What an activation range function sees: the statistics and their global min/max. */
interface ActivationInput {
  name: ObserverName;
  stats: ActivationStats;
  batches: readonly BatchStats[];
  gmin: number;
  gmax: number;
  spec: QuantSpec;
  o: ObserverOptions;
}

function actMinMax({ gmin, gmax }: ActivationInput): [number, number] {
  return [gmin, gmax];
}

function actEmaMinMax({ batches, o }: ActivationInput): [number, number] {
  return ema(
    batches.map((b) => [b.min, b.max] as [number, number]),
    o.emaRatio,
  );
}

function actMse({ name, stats, batches, gmin, gmax, spec, o }: ActivationInput): [number, number] {
  const { lo, hi } = requireHist(stats, name);
  const h = sumHistograms(batches.map((b) => b.hist!));
  const { values, weights } = histSample(h, lo, hi);
  return mseSearch(values, weights, gmin, gmax, spec, o.mseSteps, o.mseP);
}

function actEmaMse({ name, stats, batches, spec, o }: ActivationInput): [number, number] {
  const { lo, hi } = requireHist(stats, name);
  return ema(
    batches.map((b) => batchMse(b, b.hist!, lo, hi, spec, o)),
    o.emaRatio,
  );
}

function actPercentile({ name, stats, batches, gmin, gmax, o }: ActivationInput): [number, number] {
  const { lo, hi } = requireHist(stats, name);
  const h = sumHistograms(batches.map((b) => b.hist!));
  const qlo = histogramQuantile(h, lo, hi, 1 - o.percentile);
  const qhi = histogramQuantile(h, lo, hi, o.percentile);
  return [Math.max(qlo, gmin), Math.min(qhi, gmax)];
}

function actEmaQuantile({ name, stats, batches, o }: ActivationInput): [number, number] {
  const { lo, hi } = requireHist(stats, name);
  const per = batches.map((b): [number, number] => {
    const absMax = Math.max(-b.min, b.max, 0);
    // Stryker disable next-line ConditionalExpression: a shortcut; absMax 0 means min = max = 0, which the clip at 0 returns as well
    if (absMax === 0) return [b.min, b.max];
    const ah = foldAbsHistogram(b.hist!, lo, hi, EMA_QUANTILE_BINS, absMax);
    const clip = quantileClip(ah, absMax, EMA_QUANTILE_THRESHOLD);
    return clipAt(b.min, b.max, clip);
  });
  return ema(per, o.emaRatio);
}

function actClipStd({ batches, gmin, gmax, o }: ActivationInput): [number, number] {
  let sum = 0;
  let sumSq = 0;
  let n = 0;
  for (const b of batches) {
    sum += b.sum;
    sumSq += b.sumSq;
    n += b.count;
  }
  if (!(n > 0)) throw new QpError('INTERNAL', 'The clipstd observer got no elements.');
  const mean = sum / n;
  const variance = n > 1 ? Math.max(0, (sumSq - sum * mean) / (n - 1)) : 0;
  const std = Math.sqrt(variance);
  return [Math.min(mean - o.stdNum * std, gmin), Math.max(mean + o.stdNum * std, gmax)];
}

function actKl({ name, stats, batches, gmin, gmax, spec, o }: ActivationInput): [number, number] {
  const { lo, hi } = requireHist(stats, name);
  const absMax = Math.max(-gmin, gmax, 0);
  // Stryker disable next-line ConditionalExpression: a shortcut; the threshold is then 0 times the bin width
  if (absMax === 0) return [0, 0];
  const h = sumHistograms(batches.map((b) => b.hist!));
  const ah = foldAbsHistogram(h, lo, hi, o.klBins, absMax);
  const t = klThreshold(ah, absMax, klLevels(spec), 1, activationKlOptions(o.klBins));
  return gmin >= 0 ? [0, t] : [-t, t];
}

// ---------------------------------------------------------------------------
// The registry
// ---------------------------------------------------------------------------

/**
 * What an observer needs the calibration pass to collect for activations, beyond the
 * per-batch min/max every observer gets: 'histogram' (ActivationStats.batches[i].hist)
 * or 'moments' (Σx, Σx², count per batch).
 */
export type CalibrationNeed = 'minmax' | 'histogram' | 'moments';

/** One observer: its name, what calibration must collect, and its two range rules. */
export interface ObserverEntry {
  name: ObserverName;
  needs: CalibrationNeed;
  /** clipping range of one weight channel (or the whole tensor per-tensor) */
  weightRange(c: WeightChannel): [number, number];
  /** clipping range of one activation from its calibration statistics */
  activationRange(a: ActivationInput): [number, number];
}

/**
 * Every observer, one entry each (the Record type makes a missing one a compile error).
 * Adding an observer: its name in config/names.ts OBSERVER_NAMES and its entry here.
 */
export const OBSERVERS: Readonly<Record<ObserverName, ObserverEntry>> = Object.freeze({
  minmax: { name: 'minmax', needs: 'minmax', weightRange: weightMinMax, activationRange: actMinMax },
  'ema-minmax': { name: 'ema-minmax', needs: 'minmax', weightRange: weightMinMax, activationRange: actEmaMinMax },
  mse: { name: 'mse', needs: 'histogram', weightRange: weightMse, activationRange: actMse },
  'ema-mse': { name: 'ema-mse', needs: 'histogram', weightRange: weightMse, activationRange: actEmaMse },
  percentile: { name: 'percentile', needs: 'histogram', weightRange: weightPercentile, activationRange: actPercentile },
  'ema-quantile': {
    name: 'ema-quantile',
    needs: 'histogram',
    weightRange: weightEmaQuantile,
    activationRange: actEmaQuantile,
  },
  clipstd: { name: 'clipstd', needs: 'moments', weightRange: weightClipStd, activationRange: actClipStd },
  kl: { name: 'kl', needs: 'histogram', weightRange: weightKl, activationRange: actKl },
});

/**
 * The registry entry of `name`. Throws CONFIG_INVALID for an unknown observer and for
 * 'imported', whose ranges come from an imported model, not from statistics (the quantize
 * step, experiment/quantize.ts, takes them from the imported scheme before any observer).
 */
export function observerEntry(name: ObserverChoice): ObserverEntry {
  if (name === 'imported')
    bad(
      'The "imported" observer takes its ranges from an imported quantized model, and none was given here. Open the quantized model (config field importedScheme), or choose another observer.',
    );
  const e = (OBSERVERS as Record<string, ObserverEntry | undefined>)[name];
  if (!e) bad(`Unknown observer "${name}". Use one of: ${Object.keys(OBSERVERS).join(', ')}.`);
  return e;
}

/** What the calibration pass must collect so every one of `activationObservers` can run. */
export function calibrationNeeds(activationObservers: Iterable<ObserverChoice>): {
  histogram: boolean;
  moments: boolean;
} {
  let histogram = false;
  let moments = false;
  for (const name of activationObservers) {
    if (name === 'imported') continue; // fixed ranges: min/max suffice (aSign 'auto' reads them)
    const need = observerEntry(name).needs;
    histogram ||= need === 'histogram';
    moments ||= need === 'moments';
  }
  return { histogram, moments };
}
