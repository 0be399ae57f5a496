/**
 * The combined analysis graph: one ONNX graph that runs, on the same input,
 *   (a) the FP32 network,
 *   (b) a renamed copy of the quantized network (accumulated mode, as evaluated),
 *   (c) per quantized layer L a side branch: a duplicate of L reading FQ(x_L) of the FP32
 *       input with L's fake-quantized weights (standalone mode: only L quantized),
 *   (d) optionally renamed weight-only and activation-only copies (logits only),
 * and reduces every comparison to scalars (Σref², Σ(q−ref)², Σref·q, Σq², element count)
 * and per-channel means of y and y² (drift), so a run returns a few numbers per layer
 * and never whole activations. Nodes are listed interleaved, layer by layer, and all
 * reductions of a layer follow its three producers directly, so a runtime that keeps
 * the listed order can free each activation early.
 * Pure graph work: builds, never runs; never mutates its inputs.
 */
import { QpError } from '../util/errors.ts';
import { insertFakeQuant, ensureOpset } from '../onnx/fake-quant.ts';
import {
  type Graph,
  type Node,
  type TensorArray,
  type TensorData,
  cloneGraph,
  cloneNode,
  makeNode,
  makeTensor,
} from '../onnx/ir.ts';
import type { QParams } from '../quant/types.ts';
import type { Layer } from './layers.ts';

/** Graph output names of one ref-vs-quantized comparison. */
export interface CompareOutputs {
  diffSq: string;
  cross: string;
  qSq: string;
}

export interface LayerOutputs {
  count: string;
  refSq: string;
  standalone: CompareOutputs;
  accumulated: CompareOutputs;
  /** per-channel means of y and y² ([C]) in the FP32 and the quantized network */
  fpMean: string;
  fpMeanSq: string;
  qMean: string;
  qMeanSq: string;
}

export interface LogitsOutputs {
  count: string;
  refSq: string;
  full: CompareOutputs;
  weightOnly?: CompareOutputs;
  activationOnly?: CompareOutputs;
}

export interface AnalysisGraph {
  graph: Graph;
  layers: LayerOutputs[];
  logits: LogitsOutputs;
}

export interface AnalysisGraphSpec {
  /** fake-quantized weights (without fixes) by initializer name: the standalone branches use these */
  weights: Map<string, Float32Array>;
  activations: Map<string, QParams>;
  /**
   * The quantized network to analyse in accumulated mode, built from the same FP32 graph
   * by insertFakeQuant (+ setLayerParams for fixes). Default: insertFakeQuant(fp, spec).
   */
  quantized?: Graph;
  /** add weight-only and activation-only copies and compare their logits */
  variants?: boolean;
}

const P = { q: '__q/', w: '__w/', a: '__a/', sa: '__sa/', r: '__r/' };

/** Nodes of `derived` grouped by the base node they follow (slot 0: before the first node). */
function groupByBase(base: Graph, derived: Graph): Node[][] {
  const slots: Node[][] = Array.from({ length: base.nodes.length + 1 }, () => []);
  let j = 0;
  for (const n of derived.nodes) {
    const b = base.nodes[j];
    if (
      b &&
      b.opType === n.opType &&
      b.outputs.length === n.outputs.length &&
      b.outputs.every((o, k) => o === n.outputs[k])
    ) {
      slots[++j].push(n);
    } else slots[j].push(n);
  }
  if (j !== base.nodes.length)
    throw new QpError('INTERNAL', 'The quantized graph does not follow the FP32 graph node by node.');
  return slots;
}

/**
 * Builds the combined graph (see module header) for `fp` (the FP32 graph the quantization
 * points and `layers` were found on). Graph outputs are only the reductions. Throws
 * QpError MODEL_UNSUPPORTED for graphs with subgraphs (If/Loop) or below opset 7,
 * INTERNAL when the quantized graph does not match `fp`.
 */
export function buildAnalysisGraph(fp: Graph, layers: Layer[], spec: AnalysisGraphSpec): AnalysisGraph {
  if (fp.nodes.some((n) => Object.values(n.attrs).some((v) => v && typeof v === 'object' && 'graph' in v))) {
    throw new QpError(
      'MODEL_UNSUPPORTED',
      'Per-layer analysis does not support models with control flow (If/Loop/Scan subgraphs).',
    );
  }
  const base = cloneGraph(fp, { shareInitializers: true });
  ensureOpset(base, 11);
  for (const n of base.nodes)
    for (const o of n.outputs)
      if (Object.values(P).some((p) => o.startsWith(p))) {
        throw new QpError(
          'MODEL_UNSUPPORTED',
          `Tensor name "${o}" clashes with the analysis graph's reserved prefixes.`,
        );
      }
  const inputNames = new Set(base.inputs.map((v) => v.name));
  const out: Graph = { ...cloneGraph(base, { shareInitializers: true }), nodes: [], outputs: [] };
  const dataNames = new Map<TensorArray, string>();
  for (const [k, t] of out.initializers) if (!dataNames.has(t.data)) dataNames.set(t.data, k);

  const addInit = (t: TensorData, want: string): string => {
    const known = dataNames.get(t.data);
    if (known) {
      const k = out.initializers.get(known)!;
      if (k.dtype === t.dtype && k.dims.length === t.dims.length && k.dims.every((d, i) => d === t.dims[i]))
        return known;
    }
    if (out.initializers.has(want))
      throw new QpError('INTERNAL', `Analysis graph initializer "${want}" already exists.`);
    out.initializers.set(want, { ...t, name: want });
    dataNames.set(t.data, want);
    return want;
  };

  /** A renamed copy of `g` (same input), grouped by base node. */
  const copyOf = (g: Graph, prefix: string): { slots: Node[][]; rename: (t: string) => string } => {
    const initName = new Map<string, string>();
    for (const [k, t] of g.initializers) initName.set(k, base.initializers.get(k) === t ? k : addInit(t, prefix + k));
    const rename = (t: string) => (!t || inputNames.has(t) ? t : (initName.get(t) ?? prefix + t));
    const slots = groupByBase(base, g).map((list) =>
      list.map((n) => {
        const c = cloneNode(n);
        c.name = prefix + (n.name || `${n.opType}_${n.outputs[0]}`);
        c.inputs = n.inputs.map(rename);
        c.outputs = n.outputs.map(rename);
        return c;
      }),
    );
    return { slots, rename };
  };

  const quantized = spec.quantized ?? insertFakeQuant(base, { weights: spec.weights, activations: spec.activations });
  const q = copyOf(quantized, P.q);
  // FQ(x) of FP32 tensors: the chains of an activation-only graph, which read FP32 names.
  const actOnly = insertFakeQuant(base, { weights: new Map(), activations: spec.activations });
  const actSlots = groupByBase(base, actOnly);
  const baseOutputs = new Set(base.nodes.flatMap((n) => n.outputs));
  const saRename = (t: string): string => {
    if (!t || inputNames.has(t) || baseOutputs.has(t)) return t;
    const it = actOnly.initializers.get(t);
    if (it) return base.initializers.get(t) === it ? t : addInit(it, P.sa + t);
    return P.sa + t;
  };
  const fqChains = actSlots.map((list, i) =>
    (i === 0 ? list : list.slice(1)).map((n) => {
      const c = cloneNode(n);
      c.name = P.sa + (n.name || `${n.opType}_${n.outputs[0]}`);
      c.inputs = n.inputs.map(saRename);
      c.outputs = n.outputs.map((t) => (t ? P.sa + t : t));
      return c;
    }),
  );

  const w = spec.variants
    ? copyOf(insertFakeQuant(base, { weights: spec.weights, activations: new Map() }), P.w)
    : undefined;
  const a = spec.variants ? copyOf(actOnly, P.a) : undefined;

  const layerAt = new Map(layers.map((l, i) => [l.nodeIndex, i] as const));
  const layerOut: LayerOutputs[] = new Array(layers.length);
  const axesInput = base.opset >= 18;
  const viewShape = addInit(makeTensor(`${P.r}view_shape`, [3], [0n, 0n, -1n], 'int64'), `${P.r}view_shape`);
  const axes = axesInput ? addInit(makeTensor(`${P.r}axes_0_2`, [2], [0n, 2n], 'int64'), `${P.r}axes_0_2`) : '';
  const outputs: { name: string; vector: boolean }[] = [];
  const red = (nodes: Node[], op: string, x: string, y: string) => {
    nodes.push(makeNode(op, [x], [y], { keepdims: 0 }, { name: y }));
    outputs.push({ name: y, vector: false });
  };
  const compare = (nodes: Node[], ref: string, qt: string, tag: string): CompareOutputs => {
    const o = { diffSq: `${tag}/diffsq`, cross: `${tag}/cross`, qSq: `${tag}/qsq` };
    nodes.push(makeNode('Sub', [qt, ref], [`${tag}/diff`], {}, { name: `${tag}/diff` }));
    red(nodes, 'ReduceSumSquare', `${tag}/diff`, o.diffSq);
    nodes.push(makeNode('Mul', [ref, qt], [`${tag}/prod`], {}, { name: `${tag}/prod` }));
    red(nodes, 'ReduceSum', `${tag}/prod`, o.cross);
    red(nodes, 'ReduceSumSquare', qt, o.qSq);
    return o;
  };
  const count = (nodes: Node[], x: string, tag: string): string => {
    nodes.push(makeNode('Size', [x], [`${tag}/size`], {}, { name: `${tag}/size` }));
    nodes.push(makeNode('Cast', [`${tag}/size`], [`${tag}/count`], { to: 1 }, { name: `${tag}/count` }));
    outputs.push({ name: `${tag}/count`, vector: false });
    return `${tag}/count`;
  };
  const chMeans = (nodes: Node[], x: string, tag: string): [string, string] => {
    const v = `${tag}/view`;
    const sq = `${tag}/sq`;
    const m = `${tag}/mean`;
    const m2 = `${tag}/meansq`;
    nodes.push(makeNode('Reshape', [x, viewShape], [v], {}, { name: v }));
    nodes.push(makeNode('Mul', [v, v], [sq], {}, { name: sq }));
    for (const [src, dst] of [
      [v, m],
      [sq, m2],
    ]) {
      nodes.push(
        axesInput
          ? makeNode('ReduceMean', [src, axes], [dst], { keepdims: 0 }, { name: dst })
          : makeNode('ReduceMean', [src], [dst], { keepdims: 0, axes: [0, 2] }, { name: dst }),
      );
      outputs.push({ name: dst, vector: true });
    }
    return [m, m2];
  };

  const nodes: Node[] = [];
  nodes.push(...fqChains[0], ...q.slots[0], ...(w?.slots[0] ?? []), ...(a?.slots[0] ?? []));
  base.nodes.forEach((n, i) => {
    nodes.push(n, ...fqChains[i + 1], ...q.slots[i + 1], ...(w?.slots[i + 1] ?? []), ...(a?.slots[i + 1] ?? []));
    const li = layerAt.get(i);
    if (li === undefined) return;
    const layer = layers[li];
    if (n.outputs[0] !== layer.output)
      throw new QpError('INTERNAL', `Layer "${layer.name}" is not at node ${i} of the FP32 graph.`);
    // standalone: the act-only graph's copy of L reads FQ(x) of FP32 tensors; give it quantized weights
    const src = actSlots[i + 1][0];
    const sa = cloneNode(src);
    sa.name = `${P.sa}${layer.name}`;
    sa.inputs = src.inputs.map((t, k) => {
      if (k === 1) {
        const wq = spec.weights.get(layer.point.initializer);
        const wt = base.initializers.get(t)!;
        return wq ? addInit({ name: '', dtype: 'float32', dims: [...wt.dims], data: wq }, `${P.sa}${t}`) : t;
      }
      return saRename(t);
    });
    sa.outputs = [`${P.sa}${layer.output}`, ...src.outputs.slice(1).map(() => '')];
    nodes.push(sa);
    const tag = `${P.r}${layer.output}`;
    const y = layer.output;
    const yq = q.rename(y);
    const [fpMean, fpMeanSq] = chMeans(nodes, y, `${tag}/fp`);
    const [qMean, qMeanSq] = chMeans(nodes, yq, `${tag}/q`);
    const refSq = `${tag}/refsq`;
    red(nodes, 'ReduceSumSquare', y, refSq);
    layerOut[li] = {
      count: count(nodes, y, tag),
      refSq,
      standalone: compare(nodes, y, sa.outputs[0], `${tag}/sa`),
      accumulated: compare(nodes, y, yq, `${tag}/acc`),
      fpMean,
      fpMeanSq,
      qMean,
      qMeanSq,
    };
  });

  const ref = base.outputs[0].name;
  const tag = `${P.r}#logits`;
  const logitNodes: Node[] = [];
  const logits: LogitsOutputs = {
    count: count(logitNodes, ref, tag),
    refSq: `${tag}/refsq`,
    full: compare(logitNodes, ref, q.rename(ref), `${tag}/full`),
    ...(w ? { weightOnly: compare(logitNodes, ref, w.rename(ref), `${tag}/w`) } : {}),
    ...(a ? { activationOnly: compare(logitNodes, ref, a.rename(ref), `${tag}/a`) } : {}),
  };
  red(logitNodes, 'ReduceSumSquare', ref, logits.refSq);
  nodes.push(...logitNodes);

  out.nodes = nodes;
  out.outputs = outputs.map((o) => ({ name: o.name, dtype: 'float32', shape: o.vector ? [null] : [] }));
  out.valueInfo = new Map(base.valueInfo);
  const seen = new Set<string>();
  for (const n of nodes)
    for (const o of n.outputs) {
      if (!o) continue;
      if (seen.has(o)) throw new QpError('INTERNAL', `Analysis graph tensor "${o}" is produced twice.`);
      seen.add(o);
    }
  return { graph: out, layers: layerOut, logits };
}
