/**
 * Calibration statistics for every activation quantization point, gathered on the
 * FP32 model (observers watch, fake-quant is off, as in MQBench's PTQ calibration).
 *
 * Pass 1 computes min, max, Σx, Σx² inside the graph (scalar outputs), so MinMax,
 * EMA-MinMax and ClipStd never fetch a whole activation. Only when a histogram
 * observer (MSE, percentile, KL, …) is requested does pass 2 fetch the activations,
 * in small sub-batches, and bin them over the range found in pass 1.
 */
import { checkpoint } from '../util/checkpoint.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine } from '../engine/types.ts';
import { buildStatsGraph } from '../onnx/calibration.ts';
import { addOutputs } from '../onnx/fake-quant.ts';
import type { Graph } from '../onnx/ir.ts';
import { serializeModel } from '../onnx/model.ts';
import { accumulateCounts, addCounts } from '../quant/histogram.ts';
import type { ActivationStats, BatchStats } from '../quant/types.ts';
import { batches } from './batches.ts';

export interface CalibrationOptions {
  /** images per calibration batch: EMA observers update once per batch */
  batchSize: number;
  /** images per forward pass while fetching whole activations for histograms */
  histBatchSize: number;
  /** images per forward pass in pass 1 when the graph needs smaller batches (fixed batch 1) */
  feedBatchSize?: number;
  histogram: boolean;
  /** in-graph Σx and Σx² (for ClipStd); off saves two passes over every activation */
  moments: boolean;
  bins: number;
  signal?: AbortSignal;
  onProgress?: (pass: 1 | 2, done: number, total: number) => void;
}

export const DEFAULT_BINS = 2048;

export async function collectActivationStats(
  engine: Engine,
  graph: Graph,
  tensors: string[],
  crops: Uint8Array[],
  spec: PreprocessSpec,
  opts: CalibrationOptions,
): Promise<Map<string, ActivationStats>> {
  const stats = new Map<string, ActivationStats>(tensors.map((t) => [t, { batches: [] }]));
  if (tensors.length === 0 || crops.length === 0) return stats;

  // Pass 1: in-graph reductions.
  const { graph: sg, outputs } = buildStatsGraph(graph, tensors, { moments: opts.moments });
  const session = await engine.createSession(serializeModel(sg));
  const input = session.inputNames[0];
  const fetches = [...outputs.values()].flatMap((o) => (o.sum && o.sumSq ? [o.min, o.max, o.dims, o.sum, o.sumSq] : [o.min, o.max, o.dims]));
  // Engines fed one image at a time (fixed batch-1 graphs) still merge statistics per
  // observer batch, so EMA observers see the same batches either way.
  const feed = opts.feedBatchSize ?? opts.batchSize;
  let done = 0;
  try {
    for (const b of batches(crops, spec, feed)) {
      await checkpoint(opts.signal);
      const out = await session.run({ [input]: b.tensor }, fetches);
      const batchIndex = Math.floor(b.rows[0] / opts.batchSize);
      for (const t of tensors) {
        const o = outputs.get(t)!;
        const list = stats.get(t)!.batches;
        const part: BatchStats = {
          min: out[o.min].data[0],
          max: out[o.max].data[0],
          sum: o.sum ? out[o.sum].data[0] : NaN,
          sumSq: o.sumSq ? out[o.sumSq].data[0] : NaN,
          count: out[o.dims].data.reduce((a, d) => a * d, 1),
        };
        const into = list[batchIndex];
        if (!into) list[batchIndex] = part;
        else {
          into.min = Math.min(into.min, part.min);
          into.max = Math.max(into.max, part.max);
          into.sum += part.sum;
          into.sumSq += part.sumSq;
          into.count += part.count;
        }
      }
      done += b.rows.length;
      opts.onProgress?.(1, done, crops.length);
    }
  } finally {
    await session.release();
  }
  if (!opts.histogram) return stats;

  // Pass 2: histograms over the global range of pass 1, binned per pass-1 batch so
  // EMA observers see the same batches.
  for (const t of tensors) {
    const s = stats.get(t)!;
    let lo = Infinity;
    let hi = -Infinity;
    for (const b of s.batches) {
      lo = Math.min(lo, b.min);
      hi = Math.max(hi, b.max);
    }
    if (!(hi > lo)) hi = lo + 1e-8;
    s.histLo = lo;
    s.histHi = hi;
    for (const b of s.batches) b.hist = new Float64Array(opts.bins);
  }
  const counts = new Uint32Array(opts.bins);
  const tg = addOutputs(graph, tensors);
  const tapSession = await engine.createSession(serializeModel(tg));
  done = 0;
  try {
    for (const b of batches(crops, spec, opts.histBatchSize)) {
      await checkpoint(opts.signal);
      const out = await tapSession.run({ [input]: b.tensor }, tensors);
      // Sub-batches never straddle two pass-1 batches when batchSize is a multiple of histBatchSize.
      const batchIndex = Math.floor(b.rows[0] / opts.batchSize);
      for (const t of tensors) {
        const s = stats.get(t)!;
        counts.fill(0);
        accumulateCounts(out[t].data, s.histLo!, s.histHi!, counts);
        addCounts(s.batches[batchIndex].hist!, counts);
      }
      done += b.rows.length;
      opts.onProgress?.(2, done, crops.length);
    }
  } finally {
    await tapSession.release();
  }
  return stats;
}
