/**
 * Equal-width histograms of activations for the histogram observers (MSE, percentile,
 * EMA-quantile, KL).
 *
 * Why it exists: calibration fetches ~6.7M floats per image for MobileNet-V2, and
 * `accumulateHistogram` is called on every one of them, so it is a tight typed-array
 * loop (no allocation, no function call per element). The helpers turn a histogram
 * back into numbers: quantiles, bin centers, and the |x| histogram that KL and
 * EMA-quantile need.
 *
 * Convention: `hist.length` equal bins over [lo, hi]; bin k covers
 * [lo + k*w, lo + (k+1)*w) with w = (hi - lo) / bins, the last bin includes hi.
 * Must not: import ORT, DOM, Svelte, idb or node: modules.
 */
import { QpError } from '../util/errors.ts';

/**
 * Add the values of `data` to `hist` (counts, incremented in place): `hist.length`
 * equal bins over [lo, hi]. Values below lo count in the first bin, above hi in the
 * last; NaN is ignored; ±Infinity clamp like any out-of-range value. When hi <= lo
 * every non-NaN value counts in bin 0. Units of lo/hi: those of the data.
 * Throws QpError INTERNAL when lo or hi is not finite or hist is empty.
 */
export function accumulateHistogram(data: Float32Array, lo: number, hi: number, hist: Float64Array): void {
  const counts = new Uint32Array(hist.length);
  accumulateCounts(data, lo, hi, counts);
  addCounts(hist, counts);
}

/**
 * Same binning as accumulateHistogram into integer counts: faster on the calibration hot
 * path (integer increments instead of float64 read-modify-write; docs/performance.md). Each
 * bin holds < 2^32 counts, i.e. one call per activation batch. Add the counts into a
 * Float64Array histogram with addCounts when the batch is done.
 */
export function accumulateCounts(data: Float32Array, lo: number, hi: number, counts: Uint32Array): void {
  const bins = counts.length;
  if (bins === 0) throw new QpError('INTERNAL', 'A histogram needs at least one bin.');
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    throw new QpError('INTERNAL', `A histogram range must be finite, got [${lo}, ${hi}].`);
  }
  const n = data.length;
  if (!(hi > lo)) {
    let count = 0;
    for (let i = 0; i < n; i++) if (data[i] === data[i]) count++;
    counts[0] += count;
    return;
  }
  const inv = bins / (hi - lo);
  const last = bins - 1;
  // Stryker disable next-line EqualityOperator: data[n] is undefined, whose t is NaN and counts nowhere
  for (let i = 0; i < n; i++) {
    const t = (data[i] - lo) * inv;
    // Same comparisons as accumulateHistogram: NaN fails both, huge values never reach `| 0`.
    if (t < bins)
      // Stryker disable next-line EqualityOperator: t = 0 is bin 0 through `t | 0` as well
      counts[t >= 0 ? t | 0 : 0]++;
    else if (t >= bins) counts[last]++;
  }
}

/** hist += counts, bin by bin. */
export function addCounts(hist: Float64Array, counts: Uint32Array): void {
  // Stryker disable next-line EqualityOperator: a pass at i = hist.length writes past the end, which JS ignores
  for (let i = 0; i < hist.length; i++) hist[i] += counts[i];
}

/** A new histogram of `bins` bins over [lo, hi] holding `data`. Same throws as accumulateHistogram. */
export function histogramOf(data: Float32Array, lo: number, hi: number, bins: number): Float64Array {
  const h = new Float64Array(bins);
  accumulateHistogram(data, lo, hi, h);
  return h;
}

/** Sum of all counts. */
export function histogramTotal(hist: Float64Array): number {
  let s = 0;
  for (let i = 0; i < hist.length; i++) s += hist[i];
  return s;
}

/**
 * Element-wise sum of histograms of equal length (a new array).
 * Throws QpError INTERNAL when the list is empty or lengths differ.
 */
export function sumHistograms(hists: readonly Float64Array[]): Float64Array {
  if (hists.length === 0) throw new QpError('INTERNAL', 'No histograms to add.');
  const out = new Float64Array(hists[0].length);
  for (const h of hists) {
    if (h.length !== out.length)
      throw new QpError('INTERNAL', `Histograms of ${out.length} and ${h.length} bins cannot be added.`);
    // Stryker disable next-line EqualityOperator: as in addCounts, a write past the end is ignored
    for (let i = 0; i < h.length; i++) out[i] += h[i];
  }
  return out;
}

/** Centers of `bins` equal bins over [lo, hi], in data units. */
export function binCenters(lo: number, hi: number, bins: number): Float64Array {
  const w = (hi - lo) / bins;
  const out = new Float64Array(bins);
  // Stryker disable next-line EqualityOperator: as in addCounts, a write past the end is ignored
  for (let k = 0; k < bins; k++) out[k] = lo + (k + 0.5) * w;
  return out;
}

/**
 * The q-quantile (0 <= q <= 1) of the distribution in `hist` over [lo, hi], in data
 * units, assuming values spread uniformly inside each bin (linear interpolation of the
 * cumulative histogram). q = 0 gives the lower edge of the first non-empty bin, q = 1
 * the upper edge of the last non-empty bin.
 * Throws QpError INTERNAL when q is outside [0, 1] or the histogram is empty.
 */
export function histogramQuantile(hist: Float64Array, lo: number, hi: number, q: number): number {
  if (!(q >= 0 && q <= 1)) throw new QpError('INTERNAL', `A quantile must be between 0 and 1, got ${q}.`);
  const total = histogramTotal(hist);
  if (!(total > 0)) throw new QpError('INTERNAL', 'The histogram is empty: no values were observed.');
  const bins = hist.length;
  const w = (hi - lo) / bins;
  const target = q * total;
  let cum = 0;
  // Stryker disable next-line EqualityOperator: the loop returns at the last non-empty bin at the latest (see below)
  for (let k = 0; k < bins; k++) {
    const c = hist[k];
    if (c <= 0) continue;
    if (cum + c >= target) {
      const frac = Math.min(1, Math.max(0, (target - cum) / c));
      return lo + (k + frac) * w;
    }
    cum += c;
  }
  // Not reached for finite counts >= 0: q <= 1 makes target <= total, and cum adds the same non-zero
  // counts in the same order as histogramTotal, so the last non-empty bin returns above. A count of
  // Infinity (target NaN at q = 0) ends here: the top of the last non-empty bin.
  // Stryker disable next-line all: unreachable for finite counts (see above)
  for (let k = bins - 1; k >= 0; k--) if (hist[k] > 0) return lo + (k + 1) * w;
  return hi;
}

/**
 * Spread `count` values, uniform over [a, b] (0 <= a <= b), into `out` (bins of
 * width w starting at 0; beyond the last bin clamps into it).
 */
function spread(out: Float64Array, w: number, a: number, b: number, count: number): void {
  const last = out.length - 1;
  if (!(b > a)) {
    const k = Math.min(last, Math.floor(a / w));
    out[k] += count;
    return;
  }
  const density = count / (b - a);
  let k = Math.floor(a / w);
  // Stryker disable next-line EqualityOperator: at k = last the loop adds (b - a) * density, the same count up to one rounding
  if (k > last) {
    out[last] += count;
    return;
  }
  while (k <= last) {
    const binLo = k * w;
    const binHi = k === last ? Infinity : binLo + w;
    const overlap = Math.min(b, binHi) - Math.max(a, binLo);
    // Stryker disable next-line ConditionalExpression,EqualityOperator: every bin the loop reaches overlaps [a, b] (it stops at the bin holding b) but for a rounding of k * w; a zero overlap adds 0
    if (overlap > 0) out[k] += overlap * density;
    // Stryker disable next-line EqualityOperator: at binHi = b the next bin's overlap is 0 and adds nothing
    if (binHi >= b) break;
    k++;
  }
}

/**
 * Fold a signed histogram over [lo, hi] into a histogram of |x| with `bins` bins over
 * [0, absHi] (default absHi = max(|lo|, |hi|)). Each source bin's counts are assumed
 * uniform inside the bin and split by overlap, a bin straddling 0 is split at 0, and
 * mass beyond absHi lands in the last bin. Total count is preserved.
 * Throws QpError INTERNAL when bins < 1 or absHi <= 0 is given for non-zero data.
 */
export function foldAbsHistogram(
  hist: Float64Array,
  lo: number,
  hi: number,
  bins: number,
  absHi: number = Math.max(Math.abs(lo), Math.abs(hi)),
): Float64Array {
  if (!(bins >= 1)) throw new QpError('INTERNAL', `An |x| histogram needs at least one bin, got ${bins}.`);
  const out = new Float64Array(bins);
  const n = hist.length;
  if (!(absHi > 0)) {
    // every value is 0 (or the range is degenerate): all mass at |x| = 0
    out[0] = histogramTotal(hist);
    return out;
  }
  const w = absHi / bins;
  const sw = (hi - lo) / n;
  // Stryker disable next-line EqualityOperator: hist[n] is undefined and skipped below
  for (let j = 0; j < n; j++) {
    const c = hist[j];
    // Stryker disable next-line ConditionalExpression,EqualityOperator: a shortcut; a zero count spreads nothing
    if (!(c > 0)) continue;
    const a = lo + j * sw;
    // Stryker disable next-line ConditionalExpression,ArithmeticOperator: a + sw is hi up to one rounding; hi keeps the end exact
    const b = j === n - 1 ? hi : a + sw;
    // Stryker disable EqualityOperator: a bin ending at 0, split at 0 below, puts c (up to one rounding) on the
    // negative side; a bin starting at 0 puts -0 on the negative side and c on the other (a comment before
    // `else` is not read, hence a range)
    if (b <= 0) spread(out, w, -b, -a, c);
    else if (a >= 0) spread(out, w, a, b, c);
    else {
      const neg = (c * -a) / (b - a);
      spread(out, w, 0, -a, neg);
      spread(out, w, 0, b, c - neg);
    }
  }
  // Stryker restore EqualityOperator
  return out;
}

/**
 * accumulateCounts over every `stride`-th value only, starting at `offset` (< stride):
 * the calibration hot path bins a regular sample of each activation (see
 * experiment/calibrate.ts for the measured effect on the chosen ranges). stride 1 = all.
 */
export function accumulateCountsStrided(
  data: Float32Array,
  lo: number,
  hi: number,
  counts: Uint32Array,
  stride: number,
  offset = 0,
): number {
  if (!(stride >= 1) || !Number.isInteger(stride))
    throw new QpError('INTERNAL', `A sampling stride must be a positive integer, got ${stride}.`);
  // Stryker disable next-line ConditionalExpression,EqualityOperator,BlockStatement: a shortcut; the loop below bins the same for stride 1 (offset < stride)
  if (stride === 1 && offset === 0) {
    accumulateCounts(data, lo, hi, counts);
    return data.length;
  }
  const bins = counts.length;
  if (bins === 0) throw new QpError('INTERNAL', 'A histogram needs at least one bin.');
  if (!Number.isFinite(lo) || !Number.isFinite(hi))
    throw new QpError('INTERNAL', `A histogram range must be finite, got [${lo}, ${hi}].`);
  const n = data.length;
  let taken = 0;
  if (!(hi > lo)) {
    for (let i = offset; i < n; i += stride) if (data[i] === data[i]) counts[0]++;
    for (let i = offset; i < n; i += stride) taken++;
    return taken;
  }
  const inv = bins / (hi - lo);
  const last = bins - 1;
  for (let i = offset; i < n; i += stride) {
    const t = (data[i] - lo) * inv;
    if (t < bins)
      // Stryker disable next-line EqualityOperator: t = 0 is bin 0 through `t | 0` as well
      counts[t >= 0 ? t | 0 : 0]++;
    else if (t >= bins) counts[last]++;
    taken++;
  }
  return taken;
}

/**
 * Add the mass of `src` (equal bins over [srcLo, srcHi]) into `dst` (equal bins over
 * [dstLo, dstHi]), spreading each source bin's count uniformly over the destination bins it
 * overlaps (as PyTorch's HistogramObserver combines histograms). Mass outside the
 * destination range lands in its edge bins; a zero-width source range puts everything in
 * the bin of srcLo. Exact when both ranges and bin counts coincide.
 */
export function rebinHistogram(
  src: ArrayLike<number>,
  srcLo: number,
  srcHi: number,
  dst: Float64Array,
  dstLo: number,
  dstHi: number,
): void {
  const B = dst.length;
  const last = B - 1;
  if (B === 0) throw new QpError('INTERNAL', 'A histogram needs at least one bin.');
  const dstWidth = dstHi - dstLo;
  const pos = (x: number) => (dstWidth > 0 ? ((x - dstLo) / dstWidth) * B : 0);
  const clampBin = (f: number) => {
    // Stryker disable next-line EqualityOperator: f = 0 is bin 0 through Math.floor as well
    if (f < 0) return 0;
    return f >= B ? last : Math.floor(f);
  };
  // Stryker disable next-line ConditionalExpression,EqualityOperator,BlockStatement: a shortcut; for srcHi = srcLo (sw = 0) the loop below puts every count in the bin of srcLo too (calibration never passes srcHi < srcLo)
  if (!(srcHi > srcLo)) {
    let total = 0;
    for (let i = 0; i < src.length; i++) total += src[i];
    dst[clampBin(pos(srcLo))] += total;
    return;
  }
  const sw = (srcHi - srcLo) / src.length;
  // Stryker disable next-line EqualityOperator: src[src.length] is undefined and skipped below
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    // Stryker disable next-line ConditionalExpression: a shortcut; a zero count adds 0
    if (!c) continue;
    let fa = pos(srcLo + i * sw);
    let fb = pos(srcLo + (i + 1) * sw);
    fa = Math.min(Math.max(fa, 0), B);
    fb = Math.min(Math.max(fb, 0), B);
    const ka = clampBin(fa);
    const kb = Math.min(last, Math.max(ka, Math.ceil(fb) - 1));
    if (
      ka === kb ||
      // Stryker disable next-line ConditionalExpression,EqualityOperator: fb <= fa implies ka === kb (ceil(fb) - 1 <= floor(fa)); it guards the division below
      !(fb > fa)
    ) {
      dst[ka] += c;
      continue;
    }
    const per = c / (fb - fa);
    dst[ka] += per * (ka + 1 - fa);
    for (let k = ka + 1; k < kb; k++) dst[k] += per;
    dst[kb] += per * (fb - kb);
  }
}
