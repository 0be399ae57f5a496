/**
 * Accuracy and error metrics: top-k, Wilson confidence intervals, SQNR, cosine
 * similarity, MSE, and a running accuracy counter.
 *
 * Why it exists: every number the UI and the CLI report about a quantized model comes
 * from here, so both front doors agree. Deterministic: ties in top-k go to the lower
 * class index. Must not: import ORT, DOM, Svelte, idb or node: modules.
 */
import { QpError } from '../util/errors.ts';

function mismatch(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) {
    throw new QpError('INTERNAL', `Cannot compare tensors of ${a.length} and ${b.length} values.`);
  }
}

/**
 * Indices of the k largest logits of row `row` in a row-major [rows, classes] array,
 * largest first; equal values keep the lower index first; NaN ranks below everything.
 * Returns min(k, classes) indices. Throws QpError INTERNAL when the row is outside the data.
 */
export function topK(logits: Float32Array, classes: number, k: number, row: number): Int32Array {
  const base = row * classes;
  if (!(classes > 0) || row < 0 || base + classes > logits.length) {
    throw new QpError('INTERNAL', `Row ${row} of ${classes} classes is outside ${logits.length} logits.`);
  }
  const m = Math.max(0, Math.min(k, classes));
  const idx = new Int32Array(m);
  const val = new Float64Array(m);
  let filled = 0;
  for (let c = 0; c < classes; c++) {
    let v = logits[base + c];
    if (v !== v) v = -Infinity;
    // position among the current best (strictly greater wins; ties keep earlier index)
    if (filled === m && !(v > val[m - 1])) continue;
    // a full list starting one past its end still shifts down at once (v beat val[m − 1])
    // Stryker disable next-line ConditionalExpression,EqualityOperator: see above
    let p = filled < m ? filled : m - 1;
    // at p = 0, val[−1] is undefined and v > undefined is false: the bound only saves a read
    // Stryker disable next-line ConditionalExpression,EqualityOperator: see above
    while (p > 0 && v > val[p - 1]) {
      val[p] = val[p - 1];
      idx[p] = idx[p - 1];
      p--;
    }
    val[p] = v;
    idx[p] = c;
    if (filled < m) filled++;
  }
  return idx;
}

/**
 * Wilson score interval of a binomial proportion (successes of n), as [lo, hi] in [0, 1];
 * z = 1.959964 gives 95 %. n = 0 gives [0, 1].
 * Throws QpError INTERNAL when successes is outside [0, n].
 */
export function wilsonInterval(successes: number, n: number, z = 1.959964): [number, number] {
  // 0 ≤ successes ≤ n already implies n ≥ 0; the first test states it for the reader
  // Stryker disable next-line ConditionalExpression,EqualityOperator,BooleanLiteral: see above
  if (!(n >= 0) || !(successes >= 0 && successes <= n)) {
    throw new QpError('INTERNAL', `A proportion needs 0 <= successes <= n, got ${successes} of ${n}.`);
  }
  // Stryker disable next-line ConditionalExpression: 0 of 0 gives [0, 1] through the exact ends below as well
  if (n === 0) return [0, 1];
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  // exact ends where the algebra gives them (0 of n → lo 0, n of n → hi 1)
  const lo = successes === 0 ? 0 : Math.max(0, center - half);
  const hi = successes === n ? 1 : Math.min(1, center + half);
  return [lo, hi];
}

/**
 * Signal-to-quantization-noise ratio in dB: 10·log10(Σref² / Σ(ref − test)²).
 * +Infinity when the arrays are equal; -Infinity when ref is all zero and they differ.
 * Throws QpError INTERNAL on a length mismatch.
 */
export function sqnrDb(ref: Float32Array, test: Float32Array): number {
  mismatch(ref, test);
  let signal = 0;
  let noise = 0;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i];
    const d = r - test[i];
    signal += r * r;
    noise += d * d;
  }
  if (noise === 0) return Infinity;
  return 10 * Math.log10(signal / noise);
}

/**
 * Cosine similarity Σab / (‖a‖‖b‖) in [-1, 1]; 1 when both are all zero, 0 when only
 * one is. Throws QpError INTERNAL on a length mismatch.
 */
export function cosineSimilarity(a: Float32Array, b: Float32Array): number {
  mismatch(a, b);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  if (aa === 0 && bb === 0) return 1;
  if (aa === 0 || bb === 0) return 0;
  return ab / Math.sqrt(aa * bb);
}

/**
 * Mean of (a − b)² in squared data units; 0 for empty arrays.
 * Throws QpError INTERNAL on a length mismatch.
 */
export function meanSquaredError(a: Float32Array, b: Float32Array): number {
  mismatch(a, b);
  if (a.length === 0) return 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return s / a.length;
}

/** Share of positions where two prediction arrays agree (0..1; 1 for empty). Throws on a length mismatch. */
export function agreement(a: Int32Array, b: Int32Array): number {
  mismatch(a, b);
  if (a.length === 0) return 1;
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

/**
 * Running top-1 / top-5 accuracy over batches of logits, keeping every image's top-1
 * prediction (for agreement between the float and the quantized model).
 */
export class AccuracyCounter {
  readonly classes: number;
  /** images counted */
  n = 0;
  top1 = 0;
  top5 = 0;
  private preds: Int32Array;

  /** `capacity` is a hint for the number of images (the prediction buffer grows as needed). */
  constructor(classes: number, capacity = 64) {
    if (!(Number.isInteger(classes) && classes > 0)) {
      throw new QpError('INTERNAL', `An accuracy counter needs a positive class count, got ${classes}.`);
    }
    this.classes = classes;
    // Stryker disable next-line MethodExpression: a size hint; the buffer grows to what add() needs
    this.preds = new Int32Array(Math.max(1, capacity));
  }

  /**
   * Count `rows` images: logits is row-major [rows, classes], labels[r] the true class.
   * Throws QpError INTERNAL when logits or labels are shorter than `rows`.
   */
  add(logits: Float32Array, labels: ArrayLike<number>, rows: number): void {
    if (logits.length < rows * this.classes || labels.length < rows) {
      throw new QpError(
        'INTERNAL',
        `A batch of ${rows} images needs ${rows * this.classes} logits and ${rows} labels, got ${logits.length} and ${labels.length}.`,
      );
    }
    // growing more often, or by exactly what is needed, changes the cost and not the result
    // Stryker disable next-line ConditionalExpression,EqualityOperator: see above
    if (this.n + rows > this.preds.length) {
      // Stryker disable next-line ArithmeticOperator: see above (a half-size buffer still grows to n + rows)
      const grown = new Int32Array(Math.max(this.n + rows, this.preds.length * 2));
      grown.set(this.preds.subarray(0, this.n));
      this.preds = grown;
    }
    for (let r = 0; r < rows; r++) {
      const top = topK(logits, this.classes, 5, r);
      const label = labels[r];
      if (top[0] === label) this.top1++;
      // Stryker disable next-line EqualityOperator: top[top.length] is undefined, never a label
      for (let j = 0; j < top.length; j++) {
        if (top[j] === label) {
          this.top5++;
          break;
        }
      }
      this.preds[this.n++] = top[0];
    }
  }

  /** Top-1 predictions of every counted image, in order (a copy). */
  predictions(): Int32Array {
    return this.preds.slice(0, this.n);
  }

  /** Top-1 accuracy in [0, 1] (0 before any image). */
  get top1Accuracy(): number {
    return this.n ? this.top1 / this.n : 0;
  }

  /** Top-5 accuracy in [0, 1] (0 before any image). */
  get top5Accuracy(): number {
    return this.n ? this.top5 / this.n : 0;
  }
}
