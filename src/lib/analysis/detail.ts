/**
 * Data for the histogram views of one layer: the FP32 weight histogram with the
 * quantization grid and clipping range, the fake-quantized weights binned the same
 * way, per-channel weight ranges, and the activation histogram of the layer's
 * quantized input with its calibrated range. Uses the calibration histograms when the
 * pipeline made them; otherwise fetches that one tensor on a few calibration images.
 * Plain arrays out (JSON/comlink friendly). Must not change any pipeline state.
 */
import { QpError } from '../util/errors.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine } from '../engine/types.ts';
import { batches } from '../experiment/batches.ts';
import type { ActivationQuant, WeightQuant } from '../experiment/quantize.ts';
import { addOutputs } from '../onnx/fake-quant.ts';
import type { Graph } from '../onnx/ir.ts';
import { serializeModel } from '../onnx/model.ts';
import type { QuantPoints } from '../onnx/placement.ts';
import { histogramOf, sumHistograms } from '../quant/histogram.ts';
import type { ActivationStats } from '../quant/types.ts';
import { findLayers } from './layers.ts';
import { bitsOf, channelRanges } from './metrics.ts';
import type { ActivationHistogram, WeightHistogram } from '../protocol/analysis.ts';

export type { ActivationHistogram, WeightHistogram } from '../protocol/analysis.ts';

/** What the pipeline already holds for one config: everything layerDetail needs. */
export interface LayerDetailContext {
  engine: Engine;
  graph: Graph;
  points: QuantPoints;
  weights: WeightQuant[];
  activations: ActivationQuant[];
  stats: Map<string, ActivationStats>;
  calibCrops: Uint8Array[];
  spec: PreprocessSpec;
}

export interface LayerDetail {
  name: string;
  weight: WeightHistogram;
  /** null when the layer's data input is not quantized under this config */
  activation: ActivationHistogram | null;
}

function rebin(h: Float64Array, bins: number): number[] {
  if (h.length <= bins || h.length % bins !== 0) return Array.from(h);
  const k = h.length / bins;
  const out = new Array<number>(bins).fill(0);
  for (let i = 0; i < h.length; i++) out[Math.floor(i / k)] += h[i];
  return out;
}

/**
 * Histogram data of layer `name` (LayerAnalysis.name). `bins` defaults to 128;
 * `sampleImages` (default 8) bounds the images fetched when no calibration histogram
 * exists. Throws QpError INTERNAL for an unknown layer, ENGINE_FAILED from the engine.
 */
export async function layerDetail(
  ctx: LayerDetailContext,
  name: string,
  opts: { bins?: number; sampleImages?: number } = {},
): Promise<LayerDetail> {
  const bins = opts.bins ?? 128;
  const layer = findLayers(ctx.graph, ctx.points.weights).find((l) => l.name === name);
  if (!layer) throw new QpError('INTERNAL', `No quantized layer is named "${name}".`);
  const w = ctx.weights.find((x) => x.point.initializer === layer.point.initializer);
  if (!w) throw new QpError('INTERNAL', `Layer "${name}" has no quantized weights in this configuration.`);
  const init = ctx.graph.initializers.get(layer.point.initializer)!;
  const fp = init.data as Float32Array;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of fp) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!(hi > lo)) hi = lo + 1e-8;
  const qp = w.qparams;
  const scale = Array.from(qp.scale);
  const zeroPoint = Array.from(qp.zeroPoint);
  const ranges = channelRanges(fp, init.dims, layer.point.axis);
  const weight: WeightHistogram = {
    lo,
    hi,
    counts: Array.from(histogramOf(fp, lo, hi, bins)),
    quantizedCounts: Array.from(histogramOf(w.values, lo, hi, bins)),
    bits: bitsOf(qp),
    scale,
    zeroPoint,
    qmin: qp.qmin,
    qmax: qp.qmax,
    clipMin: scale.map((s, i) => s * (qp.qmin - zeroPoint[i])),
    clipMax: scale.map((s, i) => s * (qp.qmax - zeroPoint[i])),
    channelMin: Array.from(ranges.min),
    channelMax: Array.from(ranges.max),
  };
  if (scale.length === 1 && qp.qmax - qp.qmin < 4096) {
    const pts: number[] = [];
    for (let q = qp.qmin; q <= qp.qmax; q++) {
      const v = scale[0] * (q - zeroPoint[0]);
      if (v >= lo && v <= hi) pts.push(v);
    }
    weight.gridPoints = pts;
  }

  const act = ctx.activations.find((a) => layer.node.inputs.some((t, k) => k !== 1 && t === a.point.tensor));
  if (!act) return { name, weight, activation: null };
  const t = act.point.tensor;
  const st = ctx.stats.get(t);
  const base = { tensor: t, calibMin: act.min, calibMax: act.max, bits: bitsOf(act.qparams) };
  if (st && st.histLo !== undefined && st.histHi !== undefined && st.batches.every((b) => b.hist)) {
    return {
      name,
      weight,
      activation: {
        ...base,
        lo: st.histLo,
        hi: st.histHi,
        counts: rebin(sumHistograms(st.batches.map((b) => b.hist!)), bins),
        source: 'calibration',
        images: ctx.calibCrops.length,
      },
    };
  }
  const crops = ctx.calibCrops.slice(0, opts.sampleImages ?? 8);
  const session = await ctx.engine.createSession(serializeModel(addOutputs(ctx.graph, [t])));
  let data: Float32Array;
  try {
    const b = batches(crops, ctx.spec, crops.length).next().value!;
    data = (await session.run({ [session.inputNames[0]]: b.tensor }, [t]))[t].data;
  } finally {
    await session.release();
  }
  let alo = act.min;
  let ahi = act.max;
  for (const v of data) {
    if (v < alo) alo = v;
    if (v > ahi) ahi = v;
  }
  if (!(ahi > alo)) ahi = alo + 1e-8;
  return {
    name,
    weight,
    activation: {
      ...base,
      lo: alo,
      hi: ahi,
      counts: Array.from(histogramOf(data, alo, ahi, bins)),
      source: 'sample',
      images: crops.length,
    },
  };
}
