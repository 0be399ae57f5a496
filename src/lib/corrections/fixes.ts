/**
 * Forward-only fixes of a fake-quantized model, folded into each quantized layer's
 * weights and bias (the graph stays a plain fake-quant graph):
 *
 * - BN re-estimation: per output channel of each layer (its pre-activation output, where
 *   BN sits or was folded), measure mean μ_q and std σ_q on the quantized model and map
 *   them onto the FP32 statistics μ_fp, σ_fp with y' = a·y + c, a = σ_fp/σ_q,
 *   c = μ_fp − a·μ_q, folded as W' = a·W_q (per output channel) and b' = a·b + c.
 *   Per-channel weights: a·W_q lies on the grid of scale a·s, i.e. the fix only changes
 *   that channel's scale, so the layer stays exactly representable. Per-tensor weights:
 *   a channel-wise factor cannot be expressed with one scale, so a·W_q is fake-quantized
 *   again on the layer's per-tensor grid (deployable, but the scale part of the fix
 *   survives only to grid resolution and may clip; the shift c is exact).
 * - Empirical bias correction: subtract E[y_q] − E[y_fp] per output channel from the bias.
 *
 * Both are defined layer by layer: each layer is measured with the upstream corrections
 * in place. One pass per layer would cost ~50 forward passes on MobileNet-V2, and plain
 * whole-network Jacobi passes (measure every layer on the current model, subtract all
 * residuals at once) diverge there (the residual grew with every pass; docs/results.md,
 * "Bias correction and BN re-estimation"), because each layer also "corrects" the shift its
 * upstream layers are fixing at the same time, and that overshoot compounds with depth.
 * So each pass instead works like train-mode BatchNorm: after every layer the graph
 * itself corrects the output with the statistics of the current batch (y − m_b + μ_fp,
 * or (y − m_b)·σ_fp/s_b + μ_fp), so every layer is measured on inputs whose upstream is
 * already corrected, and the raw (pre-correction) statistics accumulated over all
 * batches are exactly what the sequential procedure measures, up to the difference
 * between batch and population statistics. The measured residual is then folded into
 * the weights and bias. Further passes measure the remaining residual on top of the
 * folded corrections and refine it (the report keeps it pass by pass; it shrinks to the
 * batch-statistics noise). The fixed point has every layer's output statistics equal to
 * FP32 given its corrected inputs, which is the sequential solution. Statistics come
 * from the calibration images, never the evaluation images.
 *
 * Runs graphs only through the Engine; never mutates the graphs or weights it is given.
 */
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine } from '../engine/types.ts';
import type { ActivationQuant, WeightQuant } from '../experiment/quantize.ts';
import { QpError } from '../util/errors.ts';
import { ensureOpset, insertFakeQuant } from '../onnx/fake-quant.ts';
import { type Graph, type Node, NameAllocator, makeNode, makeTensor } from '../onnx/ir.ts';
import type { QuantPoints } from '../onnx/placement.ts';
import { fakeQuantize } from '../quant/quantizer.ts';
import { findLayers, layerBias, scaleChannels, setLayerParams, type Layer } from '../analysis/layers.ts';
import { ChannelMoments } from '../analysis/metrics.ts';
import { channelMoments, forEachBatch } from '../analysis/stats.ts';
import type { FixPasses, FixReport } from '../analysis/types.ts';

export interface FixInputs {
  engine: Engine;
  /** the FP32 graph the quantization points were found on */
  graph: Graph;
  points: QuantPoints;
  weights: WeightQuant[];
  activations: ActivationQuant[];
  /** calibration images */
  crops: Uint8Array[];
  spec: PreprocessSpec;
  batchSize: number;
  signal?: AbortSignal;
  onProgress?: (message: string, done: number, total: number) => void;
}

export interface FixOptions {
  biasCorrection: boolean;
  bnReestimate: boolean;
  /** correction passes per fix (default 2); one more forward pass measures the final residual */
  passes?: number;
  /** a = σ_fp/σ_q is kept within [1/maxScale, maxScale] (default 4): guards near-dead channels */
  maxScale?: number;
}

/** Per-layer correction y' = A·y + C relative to the plain fake-quantized layer. */
interface LayerFix {
  layer: Layer;
  A: Float64Array;
  C: Float64Array;
  b0: Float64Array;
  w: WeightQuant;
}

/** The fake-quantized graph with per-layer corrections applied. */
function buildGraph(inp: FixInputs, fixes: LayerFix[], scaleWeights: boolean): Graph {
  const fq = insertFakeQuant(inp.graph, {
    weights: new Map(inp.weights.map((w) => [w.point.initializer, w.values])),
    activations: new Map(inp.activations.map((a) => [a.point.tensor, a.qparams])),
  });
  setLayerParams(
    fq,
    fixes.map((f) => {
      const bias = new Float64Array(f.layer.channels);
      for (let c = 0; c < bias.length; c++) bias[c] = f.A[c] * f.b0[c] + f.C[c];
      let weights: Float32Array | undefined;
      if (scaleWeights && f.A.some((a) => a !== 1)) {
        const init = inp.graph.initializers.get(f.w.point.initializer)!;
        weights = scaleChannels(f.w.values, init.dims, f.w.point.axis, f.A);
        if (f.w.qparams.scale.length === 1) weights = fakeQuantize(weights, init.dims, f.w.qparams);
      }
      return { layer: f.layer, bias, weights };
    }),
  );
  return fq;
}

/**
 * Adds, after each listed layer output y, an in-graph batch correction (the layer now
 * writes `<y>__raw`; y is recomputed from it): bias mode y = raw − m_b + μ_fp, BN mode
 * y = (raw − m_b)/√(v_b + ε)·σ_fp + μ_fp, with m_b, v_b the per-channel mean and variance
 * of the current batch. Outputs per-channel means of raw and raw² ([C]). Edits `g` in place.
 */
export function insertBatchCorrection(
  g: Graph,
  targets: { output: string; mean: ArrayLike<number>; std: ArrayLike<number> }[],
  mode: 'bias' | 'bn',
): Map<string, { mean: string; meanSq: string }> {
  ensureOpset(g, 11);
  const names = new NameAllocator(g);
  const outputs = new Map<string, { mean: string; meanSq: string }>();
  const axesInput = g.opset >= 18;
  const view = names.take('bc_view_shape');
  g.initializers.set(view, makeTensor(view, [3], [0n, 0n, -1n], 'int64'));
  const axes = axesInput ? names.take('bc_axes') : '';
  if (axesInput) g.initializers.set(axes, makeTensor(axes, [2], [0n, 2n], 'int64'));
  // only the BN mode reads eps; an unused initializer makes onnxruntime log a warning per session
  const eps = mode === 'bn' ? names.take('bc_eps') : '';
  if (mode === 'bn') g.initializers.set(eps, makeTensor(eps, [], [1e-12]));
  const mean = (x: string, y: string, keep: 0 | 1) =>
    axesInput
      ? makeNode('ReduceMean', [x, axes], [y], { keepdims: keep }, { name: y })
      : makeNode('ReduceMean', [x], [y], { keepdims: keep, axes: [0, 2] }, { name: y });
  const byOutput = new Map(g.nodes.map((n, i) => [n.outputs[0], i] as const));
  const insertAt = new Map<number, Node[]>();
  for (const t of targets) {
    const i = byOutput.get(t.output);
    if (i === undefined) throw new QpError('INTERNAL', `No node produces "${t.output}" in the graph being corrected.`);
    const y = t.output;
    const raw = names.take(`${y}__raw`);
    g.nodes[i] = { ...g.nodes[i], outputs: [raw, ...g.nodes[i].outputs.slice(1)] };
    const n = (k: string) => names.take(`${y}__bc_${k}`);
    const C = t.mean.length;
    const muName = n('mu_fp');
    g.initializers.set(muName, makeTensor(muName, [1, C, 1], Float32Array.from(t.mean)));
    const v = n('view');
    const m = n('mean');
    const d = n('centered');
    const o = { mean: n('raw_mean'), meanSq: n('raw_meansq') };
    const sq = n('raw_sq');
    const list: Node[] = [
      makeNode('Reshape', [raw, view], [v], {}, { name: v }),
      mean(v, m, 1),
      makeNode('Sub', [v, m], [d], {}, { name: d }),
      mean(v, o.mean, 0),
      makeNode('Mul', [v, v], [sq], {}, { name: sq }),
      mean(sq, o.meanSq, 0),
    ];
    let centred = d;
    if (mode === 'bn') {
      const sigName = n('sigma_fp');
      g.initializers.set(sigName, makeTensor(sigName, [1, C, 1], Float32Array.from(t.std)));
      const [d2, vb, ve, sb, z, zs] = ['d2', 'var', 'var_eps', 'std', 'z', 'z_scaled'].map(n);
      list.push(
        makeNode('Mul', [d, d], [d2], {}, { name: d2 }),
        mean(d2, vb, 1),
        makeNode('Add', [vb, eps], [ve], {}, { name: ve }),
        makeNode('Sqrt', [ve], [sb], {}, { name: sb }),
        makeNode('Div', [d, sb], [z], {}, { name: z }),
        makeNode('Mul', [z, sigName], [zs], {}, { name: zs }),
      );
      centred = zs;
    }
    const yv = n('out_view');
    const shape = n('shape');
    list.push(
      makeNode('Add', [centred, muName], [yv], {}, { name: yv }),
      makeNode('Shape', [raw], [shape], {}, { name: shape }),
      makeNode('Reshape', [yv, shape], [y], {}, { name: n('out') }),
    );
    insertAt.set(i, list);
    for (const k of [o.mean, o.meanSq]) g.outputs.push({ name: k, dtype: 'float32', shape: [null] });
    outputs.set(y, o);
  }
  g.nodes = g.nodes.flatMap((node, i) => [node, ...(insertAt.get(i) ?? [])]);
  g.valueInfo = new Map([...g.valueInfo].filter(([k]) => !outputs.has(k)));
  return outputs;
}

/** Mean over layers of the mean over channels of |Δμ|/σ_fp (+ |σ_q/σ_fp − 1| with `std`). */
function residual(
  fixes: LayerFix[],
  fp: Map<string, ChannelMoments>,
  q: Map<string, ChannelMoments>,
  std: boolean,
): number {
  let total = 0;
  for (const f of fixes) {
    const a = fp.get(f.layer.output)!;
    const b = q.get(f.layer.output)!;
    const sa = a.std();
    const sb = b.std();
    let maxStd = 0;
    for (const s of sa) maxStd = Math.max(maxStd, s);
    let sum = 0;
    let n = 0;
    for (let c = 0; c < sa.length; c++) {
      if (!(sa[c] > 1e-6 * maxStd)) continue;
      sum += Math.abs(b.mean[c] - a.mean[c]) / sa[c] + (std ? Math.abs(sb[c] / sa[c] - 1) : 0);
      n++;
    }
    total += n ? sum / n : 0;
  }
  return fixes.length ? total / fixes.length : 0;
}

/**
 * Applies the requested fixes (BN re-estimation first, then bias correction on top) and
 * returns the corrected fake-quant graph with a pass-by-pass report. With no fix
 * requested, returns the plain fake-quant graph. Throws QpError ENGINE_FAILED from the
 * engine and ABORTED when the signal fires.
 */
export async function applyFixes(inp: FixInputs, opts: FixOptions): Promise<{ graph: Graph; report: FixReport }> {
  const t0 = performance.now();
  const passes = opts.passes ?? 2;
  const maxScale = opts.maxScale ?? 4;
  const byInit = new Map(inp.weights.map((w) => [w.point.initializer, w] as const));
  const layers = findLayers(inp.graph, inp.points.weights).filter((l) => l.biasable && byInit.has(l.point.initializer));
  const fixes: LayerFix[] = layers.map((layer) => ({
    layer,
    A: new Float64Array(layer.channels).fill(1),
    C: new Float64Array(layer.channels),
    b0: layerBias(inp.graph, layer),
    w: byInit.get(layer.point.initializer)!,
  }));
  const report: FixReport = { seconds: 0 };
  if (!opts.biasCorrection && !opts.bnReestimate) return { graph: buildGraph(inp, [], false), report };

  const tensors = layers.map((l) => l.output);
  const total = 1 + ((opts.bnReestimate ? 1 : 0) + (opts.biasCorrection ? 1 : 0)) * (passes + 1);
  let step = 0;
  const run = { batchSize: inp.batchSize, signal: inp.signal };
  const fp = await channelMoments(inp.engine, inp.graph, tensors, inp.crops, inp.spec, run);
  inp.onProgress?.('FP32 channel statistics', ++step, total);
  const targets = layers.map((l) => ({ output: l.output, mean: fp.get(l.output)!.mean, std: fp.get(l.output)!.std() }));
  let scaled = false;

  /** raw per-layer statistics with every upstream layer corrected in-graph (see module header) */
  const measure = async (mode: 'bias' | 'bn', what: string) => {
    const g = buildGraph(inp, fixes, scaled);
    const outs = insertBatchCorrection(g, targets, mode);
    const res = new Map<string, ChannelMoments>();
    const fetches = [...outs.values()].flatMap((o) => [o.mean, o.meanSq]);
    await forEachBatch(inp.engine, g, inp.crops, inp.spec, fetches, run, (out, images) => {
      for (const [t, o] of outs) {
        const m = out[o.mean].data;
        let cm = res.get(t);
        if (!cm) res.set(t, (cm = new ChannelMoments(m.length)));
        cm.add(m, out[o.meanSq].data, images);
      }
    });
    inp.onProgress?.(what, ++step, total);
    return res;
  };

  const phase = async (kind: 'bn' | 'bias'): Promise<FixPasses> => {
    const label = kind === 'bn' ? 'BN re-estimation' : 'bias correction';
    if (kind === 'bn') scaled = true;
    const res: number[] = [];
    for (let p = 0; p <= passes; p++) {
      const q = await measure(kind, p < passes ? `${label} pass ${p + 1}/${passes}` : `${label} residual`);
      res.push(residual(fixes, fp, q, kind === 'bn'));
      if (p === passes) break;
      for (const f of fixes) {
        const a = fp.get(f.layer.output)!;
        const b = q.get(f.layer.output)!;
        const sa = a.std();
        const sb = b.std();
        for (let c = 0; c < f.layer.channels; c++) {
          if (kind === 'bn') {
            let s = sb[c] > 1e-12 && sa[c] > 1e-12 ? sa[c] / sb[c] : 1;
            s = Math.min(maxScale, Math.max(1 / maxScale, s));
            f.A[c] *= s;
            f.C[c] = s * f.C[c] + (a.mean[c] - s * b.mean[c]);
          } else {
            f.C[c] -= b.mean[c] - a.mean[c];
          }
        }
      }
    }
    return { passes, residual: res, layers: fixes.length };
  };
  if (opts.bnReestimate) report.bnReestimate = await phase('bn');
  if (opts.biasCorrection) report.biasCorrection = await phase('bias');
  report.seconds = (performance.now() - t0) / 1000;
  return { graph: buildGraph(inp, fixes, scaled), report };
}
