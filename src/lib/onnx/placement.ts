/**
 * Quantization placement: which activation tensors get a fake-quantizer and which
 * initializers are quantized weights, following MQBench-style backend rules
 * (PlacementRules). Pure graph analysis: reads the graph, never edits it, and knows
 * nothing about bit widths or observers (the pipeline decides those per point).
 */
import type { PlacementRules } from '../config/types.ts';
import { type Graph, type Node, consumersOf, dtypeOf } from './ir.ts';

/** Every rule on: a quantizer at every place any backend puts one (analysis, re-simulation, benches). */
export const ALL_PLACEMENT: Readonly<PlacementRules> = Object.freeze({
  conv: true,
  gemm: true,
  add: true,
  pool: true,
  concat: true,
  modelInput: true,
});

export interface ActivationPoint {
  tensor: string;
  /** names of the nodes whose quantized input this is */
  consumers: string[];
  /** why it is a point, e.g. 'Conv input', 'model input' */
  reasons: string[];
  /** the placement rules that made this tensor a point (a sweep filters by them per config) */
  rules: (keyof PlacementRules)[];
  /** read by the first weighted layer (for firstLast8bit) */
  firstLayerInput: boolean;
  /** read by the last weighted layer (for firstLast8bit) */
  lastLayerInput: boolean;
}

export interface WeightPoint {
  initializer: string;
  node: string;
  opType: 'Conv' | 'Gemm' | 'MatMul';
  /** output-channel axis: 0 for Conv, 0 for Gemm transB=1 else 1, 1 for MatMul [in,out] */
  axis: number;
  /** first / last weighted layer in topological order */
  isFirst: boolean;
  isLast: boolean;
  depthwise: boolean;
}

export interface QuantPoints {
  activations: ActivationPoint[];
  weights: WeightPoint[];
  /** op types present that run unquantized and are not known-transparent (sorted, unique) */
  unquantizedOps: string[];
}

/**
 * Ops whose float execution does not defeat the quantization simulation: activations,
 * reshaping, elementwise glue, normalization (folded or not), shape arithmetic. Add, pools
 * and Concat are listed too: with their rule off they simply run in float, as on the
 * backend. Compute ops with weights (Conv, Gemm, MatMul) are never transparent.
 */
const TRANSPARENT = new Set([
  'Relu',
  'LeakyRelu',
  'PRelu',
  'Clip',
  'Sigmoid',
  'HardSigmoid',
  'HardSwish',
  'Tanh',
  'Softmax',
  'LogSoftmax',
  'Elu',
  'Selu',
  'Gelu',
  'Swish',
  'Mish',
  'Erf',
  'Flatten',
  'Reshape',
  'Transpose',
  'Squeeze',
  'Unsqueeze',
  'Identity',
  'Dropout',
  'Expand',
  'Slice',
  'Split',
  'Pad',
  'Tile',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Sum',
  'Max',
  'Min',
  'Sqrt',
  'Pow',
  'Neg',
  'Abs',
  'Exp',
  'Log',
  'Reciprocal',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'Concat',
  'BatchNormalization',
  'LRN',
  'ReduceMean',
  'Shape',
  'Size',
  'Gather',
  'Constant',
  'ConstantOfShape',
  'Cast',
  'Range',
  'Equal',
  'Where',
  'Floor',
  'Ceil',
  'Round',
  'Resize',
  'Upsample',
  'DepthToSpace',
  'SpaceToDepth',
  'QuantizeLinear',
  'DequantizeLinear', // an exported QDQ model evaluated as a model
]);

/** Ops whose outputs are never float activations (shape arithmetic, indices). */
const NON_FLOAT_PRODUCERS = new Set([
  'Shape',
  'Size',
  'NonZero',
  'ArgMax',
  'ArgMin',
  'Range',
  'Equal',
  'Less',
  'Greater',
  'Not',
  'And',
  'Or',
]);

const FLOAT_TYPES = new Set([1, 10, 11, 16]); // float, float16, double, bfloat16

/**
 * Tensors that carry float activation data: graph inputs and anything computed from them,
 * excluding initializers, constants and shape/index arithmetic. Known non-float dtypes
 * (from value_info) are excluded too.
 */
function activationTensors(g: Graph): Set<string> {
  const act = new Set<string>();
  for (const v of g.inputs)
    if (v.dtype === 'float32' || v.dtype === 'float16' || v.dtype === 'float64') act.add(v.name);
  for (const n of g.nodes) {
    if (NON_FLOAT_PRODUCERS.has(n.opType)) continue;
    if (n.opType === 'Cast' && !FLOAT_TYPES.has(n.attrs.to as number)) continue;
    if (!n.inputs.some((i) => act.has(i))) continue; // constant-only subgraph (e.g. shape math)
    for (const o of n.outputs) {
      if (!o) continue;
      const dt = dtypeOf(g, o);
      if (dt && dt !== 'float32' && dt !== 'float16' && dt !== 'float64') continue;
      act.add(o);
    }
  }
  return act;
}

/**
 * Activation and weight quantization points of a graph, in network (topological) order,
 * deduplicated by tensor. The isFirst/isLast/firstLayerInput/lastLayerInput flags are
 * always set; the caller picks 8 bits for them when `firstLast8bit` is on.
 */
export function findQuantPoints(g: Graph, rules: PlacementRules): QuantPoints {
  const act = activationTensors(g);
  const isAct = (t: string) => !!t && act.has(t) && !g.initializers.has(t);
  const points = new Map<string, ActivationPoint>();
  const add = (t: string, consumer: string | null, rule: keyof PlacementRules, reason: string) => {
    if (!isAct(t)) return;
    let p = points.get(t);
    if (!p)
      points.set(
        t,
        (p = { tensor: t, consumers: [], reasons: [], rules: [], firstLayerInput: false, lastLayerInput: false }),
      );
    if (consumer && !p.consumers.includes(consumer)) p.consumers.push(consumer);
    if (!p.reasons.includes(reason)) p.reasons.push(reason);
    if (!p.rules.includes(rule)) p.rules.push(rule);
  };

  if (rules.modelInput) for (const v of g.inputs) add(v.name, null, 'modelInput', 'model input');

  const weights: WeightPoint[] = [];
  const weightedNodeInputs = new Map<Node, string[]>();
  const unquantized = new Set<string>();
  const isInit = (t: string) => g.initializers.has(t);

  for (const n of g.nodes) {
    const op = n.domain === '' || n.domain === 'ai.onnx' ? n.opType : `${n.domain}.${n.opType}`;
    let quantized = false;
    if (op === 'Conv' && rules.conv) {
      quantized = true;
      add(n.inputs[0], n.name, 'conv', 'Conv input');
      weightedNodeInputs.set(n, [n.inputs[0]]);
      const w = n.inputs[1];
      if (isInit(w)) {
        const W = g.initializers.get(w)!;
        const group = typeof n.attrs.group === 'number' ? n.attrs.group : 1;
        weights.push({
          initializer: w,
          node: n.name,
          opType: 'Conv',
          axis: 0,
          isFirst: false,
          isLast: false,
          depthwise: group > 1 && W.dims[1] === 1 && W.dims[0] === group,
        });
      }
    } else if ((op === 'Gemm' || op === 'MatMul') && rules.gemm) {
      quantized = true;
      const [a, b] = n.inputs;
      const dataIns = [a, b].filter((t) => !isInit(t));
      for (const t of dataIns) add(t, n.name, 'gemm', `${op} input`);
      weightedNodeInputs.set(n, dataIns);
      if (isInit(b) && !isInit(a)) {
        const transB = op === 'Gemm' && n.attrs.transB === 1;
        weights.push({
          initializer: b,
          node: n.name,
          opType: op,
          axis: op === 'Gemm' && transB ? 0 : 1,
          isFirst: false,
          isLast: false,
          depthwise: false,
        });
      }
    } else if (op === 'Add' && rules.add) {
      quantized = true;
      for (const t of n.inputs) add(t, n.name, 'add', 'Add input');
    } else if (
      (op === 'MaxPool' || op === 'AveragePool' || op === 'GlobalAveragePool' || op === 'GlobalMaxPool') &&
      rules.pool
    ) {
      quantized = true;
      add(n.inputs[0], n.name, 'pool', `${op} input`);
    } else if (op === 'Concat' && rules.concat) {
      quantized = true;
      for (const t of n.inputs) add(t, n.name, 'concat', 'Concat input');
    }
    if (!quantized && !TRANSPARENT.has(op)) {
      unquantized.add(op);
    }
  }

  // first / last weighted layer in topological order
  if (weights.length) {
    weights[0].isFirst = true;
    weights[weights.length - 1].isLast = true;
    const nodeByName = new Map(g.nodes.map((n) => [n.name, n] as const));
    const mark = (w: WeightPoint, key: 'firstLayerInput' | 'lastLayerInput') => {
      const n = nodeByName.get(w.node);
      for (const t of (n && weightedNodeInputs.get(n)) ?? []) {
        const p = points.get(t);
        if (p) p[key] = true;
      }
    };
    mark(weights[0], 'firstLayerInput');
    mark(weights[weights.length - 1], 'lastLayerInput');
  }

  // consumersOf is only used to keep a stable, documented order: points in the order of
  // their tensor's first use, model inputs first.
  const order = new Map<string, number>();
  g.inputs.forEach((v, i) => order.set(v.name, -g.inputs.length + i));
  const cons = consumersOf(g);
  const nodeIndex = new Map(g.nodes.map((n, i) => [n, i] as const));
  for (const t of points.keys()) {
    if (order.has(t)) continue;
    const first = Math.min(...(cons.get(t) ?? []).map((n) => nodeIndex.get(n) ?? Infinity));
    order.set(t, first);
  }
  const activations = [...points.values()].sort((p, q) => order.get(p.tensor)! - order.get(q.tensor)!);
  return { activations, weights, unquantizedOps: [...unquantized].sort() };
}
