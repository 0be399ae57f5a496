/**
 * Calibration statistics for every activation quantization point, gathered on the
 * FP32 model (observers watch, fake-quant is off, as in MQBench's PTQ calibration).
 *
 * Without histogram observers: one pass computes min, max, Σx, Σx² inside the graph
 * (scalar outputs), so MinMax, EMA-MinMax and ClipStd never fetch a whole activation.
 *
 * With a histogram observer (MSE, percentile, KL, …), by default ONE pass fetches the
 * activations in small sub-batches: exact min/max/moments from in-graph reductions, and a
 * histogram of every `sampleStride`-th value into 4× finer bins over the observer batch's
 * running range (re-binned when the range grows), re-binned at the end onto `bins` bins over
 * the global range (as PyTorch's HistogramObserver combines histograms). That is one forward
 * pass instead of two and a third of the binning work (bench:perf; docs/performance.md,
 * "Histogram calibration"). `histogramMode: 'exact'` keeps the two-pass form (bin every value
 * over the global range of pass 1) for golden comparisons; scripts/calib-compare.ts measures
 * how far the sampled form moves the observers' ranges on MobileNet-V2.
 */
import { checkpoint } from '../util/checkpoint.ts';
import { QpError } from '../util/errors.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine } from '../engine/types.ts';
import { addStridedSamples, buildStatsGraph, samplePhase, type StridedSamples } from '../onnx/calibration.ts';
import { addOutputs, ensureOpset } from '../onnx/fake-quant.ts';
import { cloneGraph, type Graph } from '../onnx/ir.ts';
import { serializeModel } from '../onnx/model.ts';
import { accumulateCounts, accumulateCountsStrided, addCounts, rebinHistogram } from '../quant/histogram.ts';
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
  /** 'single-pass' (default; see header) or 'exact' (two passes, every value binned) */
  histogramMode?: 'single-pass' | 'exact';
  /** single-pass: bin every n-th value (default SAMPLE_STRIDE; 1 = all) */
  sampleStride?: number;
  signal?: AbortSignal;
  /** pass 1: statistics, 2: histograms (two-pass form); 'both': the single pass collecting both */
  onProgress?: (pass: 1 | 2 | 'both', done: number, total: number) => void;
}

export const DEFAULT_BINS = 2048;
/** single-pass binning samples every 3rd value (odd, so it walks across rows and channels) */
export const SAMPLE_STRIDE = 3;
/** single-pass histograms are kept at this many times `bins` until the global range is known */
const FINE_FACTOR = 4;

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
  if (opts.histogram && (opts.histogramMode ?? 'single-pass') === 'single-pass') {
    await singlePassHistograms(engine, graph, tensors, crops, spec, opts, stats);
    return stats;
  }

  // Pass 1: in-graph reductions. Element counts from the graph's Shape outputs, or on WebGPU
  // (whose provider would run those on the CPU) from one image beforehand.
  const shapes = engine.kind !== 'webgpu';
  const perImage = shapes ? undefined : await valuesPerImage(engine, graph, tensors, crops[0], spec);
  const { graph: sg, outputs } = buildStatsGraph(graph, tensors, { moments: opts.moments, shapes });
  const session = await engine.createSession(serializeModel(sg));
  const input = session.inputNames[0];
  const fetches = [...outputs.values()].flatMap((o) => [
    o.min,
    o.max,
    ...(o.dims ? [o.dims] : []),
    ...(o.sum && o.sumSq ? [o.sum, o.sumSq] : []),
  ]);
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
          count: o.dims ? out[o.dims].data.reduce((a, d) => a * d, 1) : perImage!.get(t)! * b.rows.length,
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

/**
 * Values per image of each tensor, from one image through the graph with the tensors as
 * outputs: a batch of n images holds n times as many (the tensors are activations, batch
 * first). For WebGPU, whose statistics graph carries no Shape (see onnx/calibration.ts).
 */
async function valuesPerImage(
  engine: Engine,
  graph: Graph,
  tensors: string[],
  crop: Uint8Array,
  spec: PreprocessSpec,
): Promise<Map<string, number>> {
  const session = await engine.createSession(serializeModel(addOutputs(graph, tensors)));
  try {
    const one = batches([crop], spec, 1).next().value!;
    const out = await session.run({ [session.inputNames[0]]: one.tensor }, tensors);
    return new Map(tensors.map((t) => [t, out[t].data.length]));
  } finally {
    await session.release();
  }
}

/**
 * The graph with strided-sample outputs (onnx/calibration.ts), raised to opset 11 first where
 * it is older (Slice takes steps from 10; ensureOpset keeps every op's meaning). Undefined
 * when the model cannot be raised: the caller then fetches whole tensors, as before.
 */
function stridedSampleGraph(graph: Graph, tensors: string[], stride: number): StridedSamples | undefined {
  let g = graph;
  if (g.opset < 10) {
    g = cloneGraph(graph, { shareInitializers: true });
    try {
      ensureOpset(g, 11);
    } catch (e) {
      if (e instanceof QpError && e.code === 'MODEL_UNSUPPORTED') return undefined;
      throw e;
    }
  }
  return addStridedSamples(g, tensors, stride);
}

interface RunningHist {
  lo: number;
  hi: number;
  fine: Float64Array;
}

/** One forward pass: exact per-batch min/max/moments, sampled fine histograms (see header). */
async function singlePassHistograms(
  engine: Engine,
  graph: Graph,
  tensors: string[],
  crops: Uint8Array[],
  spec: PreprocessSpec,
  opts: CalibrationOptions,
  stats: Map<string, ActivationStats>,
): Promise<void> {
  const stride = opts.sampleStride ?? SAMPLE_STRIDE;
  const fineBins = opts.bins * FINE_FACTOR;
  const counts = new Uint32Array(fineBins);
  const running = new Map<string, RunningHist[]>(tensors.map((t) => [t, []]));
  // Min/max (and moments) come from in-graph reductions (exact for min/max) instead of a JS
  // loop over every value: JS touches only the sampled values. On the CPU engines the graph
  // also takes the sample (a strided Slice; onnx/calibration.ts addStridedSamples), so a
  // third of each activation leaves the engine instead of all of it, and element counts come
  // from Shape outputs. On WebGPU, whose provider runs those int64 index ops on the CPU, the
  // whole tensors are fetched and counted.
  const sampled = engine.kind !== 'webgpu' && stride > 1 ? stridedSampleGraph(graph, tensors, stride) : undefined;
  const { graph: sg, outputs } = buildStatsGraph(sampled?.graph ?? graph, tensors, {
    moments: opts.moments,
    shapes: !!sampled,
  });
  const session = await engine.createSession(serializeModel(sampled ? sg : addOutputs(sg, tensors)));
  const input = session.inputNames[0];
  const fetches = [
    ...(sampled ? tensors.map((t) => sampled.outputs.get(t)!) : tensors),
    ...[...outputs.values()].flatMap((o) => [
      ...(o.sum && o.sumSq ? [o.min, o.max, o.sum, o.sumSq] : [o.min, o.max]),
      ...(o.dims ? [o.dims] : []),
    ]),
  ];
  let done = 0;
  let call = 0;
  try {
    for (const b of batches(crops, spec, opts.histBatchSize)) {
      await checkpoint(opts.signal);
      const offset = call % stride;
      const feeds = sampled ? { [input]: b.tensor, [sampled.phase]: samplePhase(offset) } : { [input]: b.tensor };
      const out = await session.run(feeds, fetches);
      const batchIndex = Math.floor(b.rows[0] / opts.batchSize);
      for (const t of tensors) {
        const o = outputs.get(t)!;
        // the values binned: the sample taken in the graph, or the whole tensor to sample here
        const data = out[sampled ? sampled.outputs.get(t)! : t].data;
        const size = o.dims ? out[o.dims].data.reduce((a, d) => a * d, 1) : data.length;
        const mn = out[o.min].data[0];
        const mx = out[o.max].data[0];
        const sum = o.sum ? out[o.sum].data[0] : NaN;
        const sumSq = o.sumSq ? out[o.sumSq].data[0] : NaN;
        const list = stats.get(t)!.batches;
        const into = list[batchIndex];
        const part: BatchStats = { min: mn, max: mx, sum, sumSq, count: size };
        if (!into) list[batchIndex] = part;
        else {
          into.min = Math.min(into.min, mn);
          into.max = Math.max(into.max, mx);
          into.sum += part.sum;
          into.sumSq += part.sumSq;
          into.count += part.count;
        }
        if (!(mx >= mn)) continue; // no finite values
        const runs = running.get(t)!;
        let r = runs[batchIndex];
        if (!r) r = runs[batchIndex] = { lo: mn, hi: mx, fine: new Float64Array(fineBins) };
        else if (mn < r.lo || mx > r.hi) {
          const grown = new Float64Array(fineBins);
          const lo = Math.min(r.lo, mn);
          const hi = Math.max(r.hi, mx);
          rebinHistogram(r.fine, r.lo, r.hi, grown, lo, hi);
          r.lo = lo;
          r.hi = hi;
          r.fine = grown;
        }
        counts.fill(0);
        const taken = sampled
          ? accumulateCountsStrided(data, r.lo, r.hi, counts, 1, 0)
          : accumulateCountsStrided(data, r.lo, r.hi, counts, stride, offset);
        // scale the sample up to the whole tensor, so counts stay comparable across batches
        const w = taken > 0 ? size / taken : 0;
        for (let k = 0; k < fineBins; k++) if (counts[k]) r.fine[k] += counts[k] * w;
      }
      call++;
      done += b.rows.length;
      opts.onProgress?.('both', done, crops.length);
    }
  } finally {
    await session.release();
  }
  for (const t of tensors) {
    const s = stats.get(t)!;
    let lo = Infinity;
    let hi = -Infinity;
    for (const b of s.batches) {
      lo = Math.min(lo, b.min);
      hi = Math.max(hi, b.max);
    }
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
      lo = 0;
      hi = 0;
    }
    if (!(hi > lo)) hi = lo + 1e-8;
    s.histLo = lo;
    s.histHi = hi;
    const runs = running.get(t)!;
    s.batches.forEach((b, i) => {
      b.hist = new Float64Array(opts.bins);
      const r = runs[i];
      if (r) rebinHistogram(r.fine, r.lo, r.hi, b.hist, lo, hi);
    });
  }
}
