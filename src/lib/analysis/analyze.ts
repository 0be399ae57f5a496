/**
 * Per-layer analysis of one quantized configuration: weight statistics in JS on the
 * initializers, and one pass of the combined analysis graph (graph.ts) over the
 * analysis images for activation error (standalone and accumulated), BN statistic
 * drift and logits SQNR; plus whole-model weight-only and activation-only accuracy on
 * the evaluation images. Engine calls only through the Engine interface. It must not
 * change the numbers of the run it analyses (it only reads the pipeline's state).
 */
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine } from '../engine/types.ts';
import { evaluate, toAccuracy } from '../experiment/evaluate.ts';
import type { ActivationQuant, WeightQuant } from '../experiment/quantize.ts';
import { insertFakeQuant } from '../onnx/fake-quant.ts';
import { type Graph, consumersOf } from '../onnx/ir.ts';
import { evaluationModel } from '../experiment/evaluate.ts';
import type { QuantPoints } from '../onnx/placement.ts';
import { sqnrDb } from '../quant/metrics.ts';
import { buildAnalysisGraph, type CompareOutputs } from './graph.ts';
import { findLayers } from './layers.ts';
import {
  ChannelMoments,
  type ErrorSums,
  addErrorSums,
  bitsOf,
  channelRanges,
  driftSummary,
  emptyErrorSums,
  errorMetrics,
  vanishedChannels,
} from './metrics.ts';
import { forEachBatch } from './stats.ts';
import type { LayerAnalysis, ModelAnalysis } from './types.ts';

export interface AnalysisInputs {
  engine: Engine;
  /** the FP32 graph the quantization points were found on (BN folded when the config folds) */
  graph: Graph;
  points: QuantPoints;
  weights: WeightQuant[];
  activations: ActivationQuant[];
  /** the quantized graph as evaluated (fixes applied); default: plain fake-quant graph */
  quantized?: Graph;
  spec: PreprocessSpec;
  /** images for the per-layer pass */
  crops: Uint8Array[];
  /** evaluation images and labels for weight-only / activation-only accuracy (skipped when absent) */
  evalCrops?: Uint8Array[];
  evalLabels?: number[];
  /** images per forward pass of the combined graph (default 8) */
  batchSize?: number;
  evalBatch?: number;
  signal?: AbortSignal;
  onProgress?: (message: string, done: number, total: number) => void;
}

export interface AnalysisOutput {
  layers: LayerAnalysis[];
  analysis: ModelAnalysis;
}

const arr = (a: ArrayLike<number>) => Array.from(a);

function readSums(
  out: Record<string, { data: Float32Array }>,
  count: string,
  refSq: string,
  c: CompareOutputs,
): ErrorSums {
  return {
    refSq: out[refSq].data[0],
    diffSq: out[c.diffSq].data[0],
    cross: out[c.cross].data[0],
    qSq: out[c.qSq].data[0],
    count: out[count].data[0],
  };
}

/**
 * Runs the analysis. Per-layer rows come in network order. When evalCrops are given,
 * the weight-only and activation-only models are evaluated on them (two extra
 * evaluations); otherwise their accuracies are NaN. Throws QpError from the engine.
 */
export async function analyzeQuantization(inp: AnalysisInputs): Promise<AnalysisOutput> {
  const t0 = performance.now();
  const { graph } = inp;
  const layers = findLayers(graph, inp.points.weights);
  const wq = new Map(inp.weights.map((w) => [w.point.initializer, w] as const));
  const aq = new Map(inp.activations.map((a) => [a.point.tensor, a] as const));
  const weightsMap = new Map(inp.weights.map((w) => [w.point.initializer, w.values]));
  const actsMap = new Map(inp.activations.map((a) => [a.point.tensor, a.qparams]));

  const ag = buildAnalysisGraph(graph, layers, {
    weights: weightsMap,
    activations: actsMap,
    quantized: inp.quantized,
    variants: true,
  });
  const fetches = ag.graph.outputs.map((o) => o.name);
  const sa = layers.map(() => emptyErrorSums());
  const acc = layers.map(() => emptyErrorSums());
  const fpM: (ChannelMoments | undefined)[] = layers.map(() => undefined);
  const qM: (ChannelMoments | undefined)[] = layers.map(() => undefined);
  const lg = { full: emptyErrorSums(), w: emptyErrorSums(), a: emptyErrorSums() };
  const evalSteps = inp.evalCrops?.length ? 2 : 0;
  const total = 1 + evalSteps;
  await forEachBatch(
    inp.engine,
    ag.graph,
    inp.crops,
    inp.spec,
    fetches,
    {
      batchSize: inp.batchSize ?? 8,
      signal: inp.signal,
      onBatch: (d, t) => inp.onProgress?.(`Per-layer error ${d}/${t}`, d / t, total),
    },
    (out, images) => {
      ag.layers.forEach((o, i) => {
        addErrorSums(sa[i], readSums(out, o.count, o.refSq, o.standalone));
        addErrorSums(acc[i], readSums(out, o.count, o.refSq, o.accumulated));
        const fm = out[o.fpMean].data;
        (fpM[i] ??= new ChannelMoments(fm.length)).add(fm, out[o.fpMeanSq].data, images);
        (qM[i] ??= new ChannelMoments(fm.length)).add(out[o.qMean].data, out[o.qMeanSq].data, images);
      });
      const L = ag.logits;
      addErrorSums(lg.full, readSums(out, L.count, L.refSq, L.full));
      if (L.weightOnly) addErrorSums(lg.w, readSums(out, L.count, L.refSq, L.weightOnly));
      if (L.activationOnly) addErrorSums(lg.a, readSums(out, L.count, L.refSq, L.activationOnly));
    },
  );

  const consumers = consumersOf(graph);
  const rows: LayerAnalysis[] = layers.map((layer, i) => {
    const init = graph.initializers.get(layer.point.initializer)!;
    const fpW = init.data as Float32Array;
    const w = wq.get(layer.point.initializer);
    const qW = w?.values ?? fpW;
    const ranges = channelRanges(fpW, init.dims, layer.point.axis);
    const dataInput = layer.node.inputs.find((t, k) => k !== 1 && aq.has(t) && !graph.initializers.has(t));
    const act = dataInput ? aq.get(dataInput)! : undefined;
    const f = fpM[i]!;
    const q = qM[i]!;
    const fs = f.std();
    const qs = q.std();
    const row: LayerAnalysis = {
      name: layer.name,
      opType: layer.point.opType,
      depthwise: layer.point.depthwise,
      index: i,
      output: layer.output,
      weight: layer.point.initializer,
      weightBits: w ? bitsOf(w.qparams) : 32,
      weightSqnrDb: sqnrDb(fpW, qW),
      standalone: errorMetrics(sa[i]),
      accumulated: errorMetrics(acc[i]),
      activationInput: act ? { tensor: act.point.tensor, min: act.min, max: act.max, bits: bitsOf(act.qparams) } : null,
      channels: layer.channels,
      vanishedChannels: vanishedChannels(fpW, qW, init.dims, layer.point.axis),
      weightRanges: { min: arr(ranges.min), max: arr(ranges.max) },
      drift: driftSummary(q.mean, qs, f.mean, fs),
      channelDrift: { fpMean: arr(f.mean), fpStd: arr(fs), qMean: arr(q.mean), qStd: arr(qs) },
    };
    // An unfolded BatchNormalization reading this output: compare with its running stats.
    const bn = (consumers.get(layer.output) ?? []).find(
      (n) => n.opType === 'BatchNormalization' && n.inputs[0] === layer.output,
    );
    const rm = bn && graph.initializers.get(bn.inputs[3]);
    const rv = bn && graph.initializers.get(bn.inputs[4]);
    if (rm && rv && rm.data.length === layer.channels && rv.data.length === layer.channels) {
      const eps = typeof bn.attrs.epsilon === 'number' ? bn.attrs.epsilon : 1e-5;
      const runningMean = arr(rm.data as Float32Array);
      const runningStd = Array.from(rv.data as Float32Array, (v) => Math.sqrt(v + eps));
      row.channelDrift.runningMean = runningMean;
      row.channelDrift.runningStd = runningStd;
      row.driftVsRunning = {
        fp: driftSummary(f.mean, fs, runningMean, runningStd),
        q: driftSummary(q.mean, qs, runningMean, runningStd),
      };
    }
    return row;
  });

  const nan = { top1: NaN, top5: NaN, top1Ci: [NaN, NaN] as [number, number], top5Ci: [NaN, NaN] as [number, number] };
  let weightOnly = nan;
  let activationOnly = nan;
  if (inp.evalCrops?.length && inp.evalLabels) {
    const variants = [
      insertFakeQuant(graph, { weights: weightsMap, activations: new Map() }),
      insertFakeQuant(graph, { weights: new Map(), activations: actsMap }),
    ];
    const accs = [];
    for (const [k, g] of variants.entries()) {
      // the form every evaluation runs in (Q/DQ on the CPU engines, Round-free on WebGPU)
      const m = evaluationModel(inp.engine, g, {});
      const session = await inp.engine.createSession(m.bytes, m.options);
      try {
        const o = await evaluate(session, inp.evalCrops, inp.evalLabels, inp.spec, {
          batchSize: inp.evalBatch ?? 32,
          signal: inp.signal,
          onBatch: (d, t) =>
            inp.onProgress?.(`${k ? 'Activation' : 'Weight'}-only evaluation ${d}/${t}`, 1 + k + d / t, total),
        });
        accs.push(toAccuracy(o));
      } finally {
        await session.release();
      }
    }
    [weightOnly, activationOnly] = accs;
  }
  return {
    layers: rows,
    analysis: {
      images: inp.crops.length,
      weightOnly,
      activationOnly,
      logitsSqnrDb: {
        full: errorMetrics(lg.full).sqnrDb,
        weightOnly: errorMetrics(lg.w).sqnrDb,
        activationOnly: errorMetrics(lg.a).sqnrDb,
      },
      seconds: (performance.now() - t0) / 1000,
    },
  };
}
