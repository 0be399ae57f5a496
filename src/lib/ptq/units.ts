/**
 * The units a reconstruction optimises one at a time: a single layer (AdaRound) or a
 * block (BRECQ, QDrop), each a piece of the FP32 graph from one input tensor to one output
 * tensor. Blocks follow one rule that works for any CNN: the graph is cut at its
 * single-tensor cuts (cuts.ts: every gap where one tensor carries the whole state);
 * a piece between two cuts that joins branches (a residual block: MobileNet-V2's inverted
 * residuals, ResNet's basic blocks with or without a projection shortcut) is a block of
 * its own, and the plain chain between such blocks is grouped into runs of up to three
 * weight layers, as MQBench's extract_block stacks two or three layers where there is no
 * shortcut (MobileNet-V2's blocks without a residual are exactly three layers: expand,
 * depthwise, project). A layer is its weight node plus the elementwise activation after
 * it, up to the next quantized tensor (the loss is taken after the activation, as
 * MQBench's layer mode). Pieces with an op the backward pass lacks (train-graph.ts) are
 * not units: their layers keep their rounding and the reason is reported.
 * Pure graph analysis; reads the graph, never edits it.
 */
import type { Graph, Node } from '../onnx/ir.ts';
import type { WeightPoint } from '../onnx/placement.ts';
import { singleTensorCuts } from './cuts.ts';
import { unsupportedOp } from './train-graph.ts';

export interface ReconUnit {
  /** e.g. "Conv_10…Add_15" */
  name: string;
  input: string;
  output: string;
  /** the unit's nodes in graph order, with the constant-only producers they read */
  nodes: Node[];
  /** positions of the unit's first and last own node in graph.nodes */
  first: number;
  last: number;
  /** the weight points inside, in graph order */
  layers: WeightPoint[];
  /** a piece with weight layers that cannot be trained, and why (its layers keep their rounding) */
  skipped?: string;
}

/** Up to this many weight layers are stacked into one unit where there is no shortcut (MQBench). */
export const MAX_CHAIN_LAYERS = 3;

function constantsOf(g: Graph): Set<string> {
  const k = new Set<string>(g.initializers.keys());
  for (const n of g.nodes) if (n.inputs.every((t) => !t || k.has(t))) for (const o of n.outputs) if (o) k.add(o);
  return k;
}

/** `nodes` plus, in front, the constant-only nodes (anywhere in the graph) they read from. */
function withConstantProducers(g: Graph, nodes: Node[], constant: Set<string>): Node[] {
  const own = new Set(nodes);
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const extra = new Set<Node>();
  const visit = (t: string) => {
    if (!t || !constant.has(t) || g.initializers.has(t)) return;
    const p = producer.get(t);
    if (!p || own.has(p) || extra.has(p)) return;
    extra.add(p);
    for (const i of p.inputs) visit(i);
  };
  for (const n of nodes) for (const i of n.inputs) visit(i);
  if (!extra.size) return nodes;
  return [...g.nodes.filter((n) => extra.has(n)), ...nodes];
}

function unitOf(
  g: Graph,
  nodes: Node[],
  input: string,
  output: string,
  first: number,
  last: number,
  byNode: Map<string, WeightPoint>,
  constant: Set<string>,
): ReconUnit {
  const layers = nodes.map((n) => byNode.get(n.name)).filter((p): p is WeightPoint => !!p);
  const name = nodes.length > 1 ? `${nodes[0].name}…${nodes[nodes.length - 1].name}` : nodes[0].name;
  const bad = nodes.map((n) => unsupportedOp(n, (t) => !t || constant.has(t))).find((r) => r);
  return {
    name,
    input,
    output,
    nodes: withConstantProducers(g, nodes, constant),
    first,
    last,
    layers,
    ...(bad ? { skipped: `the backward pass has no rule for ${bad}` } : {}),
  };
}

/**
 * Blocks for BRECQ and QDrop (see the module header), in network order. Only pieces that
 * hold a weight layer are returned; the rest run as they are between units.
 */
export function blockUnits(g: Graph, points: readonly WeightPoint[]): ReconUnit[] {
  const constant = constantsOf(g);
  const byNode = new Map(points.map((p) => [p.node, p]));
  const cuts = singleTensorCuts(g);
  if (!cuts.length || g.outputs.length !== 1) return [];
  const bounds = [...cuts, { gap: g.nodes.length, tensor: g.outputs[0].name }];
  interface Piece {
    from: number;
    to: number;
    input: string;
    output: string;
    join: boolean;
    layers: number;
    bad: boolean;
  }
  const pieces: Piece[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const from = bounds[i].gap;
    const to = bounds[i + 1].gap;
    if (to <= from) continue;
    const nodes = g.nodes.slice(from, to);
    const live = (t: string) => !!t && !constant.has(t);
    pieces.push({
      from,
      to,
      input: bounds[i].tensor,
      output: bounds[i + 1].tensor,
      join: nodes.some((n) => new Set(n.inputs.filter(live)).size > 1),
      layers: nodes.filter((n) => byNode.has(n.name)).length,
      bad: nodes.some((n) => unsupportedOp(n, (t) => !t || constant.has(t))),
    });
  }
  const units: ReconUnit[] = [];
  let group: Piece[] = [];
  const flush = () => {
    if (group.length && group.some((p) => p.layers > 0)) {
      const from = group[0].from;
      const to = group[group.length - 1].to;
      units.push(
        unitOf(
          g,
          g.nodes.slice(from, to),
          group[0].input,
          group[group.length - 1].output,
          from,
          to - 1,
          byNode,
          constant,
        ),
      );
    }
    group = [];
  };
  for (const p of pieces) {
    if (p.join || p.bad) {
      flush();
      group = [p];
      flush();
      continue;
    }
    const layers = group.reduce((s, q) => s + q.layers, 0);
    if (p.layers > 0 && layers + p.layers > MAX_CHAIN_LAYERS) flush();
    group.push(p);
  }
  flush();
  return units;
}

/** Elementwise ops a layer unit takes after its weight node (one activation input). */
const TRAILING = new Set(['Relu', 'Clip', 'Add', 'Sub', 'Mul', 'Div', 'Min', 'Max', 'Identity']);

/**
 * One unit per weight layer (AdaRound's setting), in network order: the weight node and
 * the elementwise ops that follow it alone, up to a tensor that is quantized, read twice
 * or a graph output. `quantized` names the activation tensors that get a quantizer.
 */
export function layerUnits(g: Graph, points: readonly WeightPoint[], quantized: ReadonlySet<string>): ReconUnit[] {
  const constant = constantsOf(g);
  const byNode = new Map(points.map((p) => [p.node, p]));
  const consumers = new Map<string, number[]>();
  g.nodes.forEach((n, i) => {
    for (const t of new Set(n.inputs)) if (t) consumers.set(t, [...(consumers.get(t) ?? []), i]);
  });
  const outputs = new Set(g.outputs.map((o) => o.name));
  const units: ReconUnit[] = [];
  g.nodes.forEach((n, i) => {
    if (!byNode.has(n.name)) return;
    const nodes = [n];
    let last = i;
    let t = n.outputs[0];
    for (;;) {
      const next = consumers.get(t) ?? [];
      if (quantized.has(t) || outputs.has(t) || next.length !== 1) break;
      const m = g.nodes[next[0]];
      const live = m.inputs.filter((x) => x && !constant.has(x));
      if (!TRAILING.has(m.opType) || live.length !== 1 || m.outputs.length !== 1) break;
      nodes.push(m);
      last = next[0];
      t = m.outputs[0];
    }
    units.push(unitOf(g, nodes, n.inputs[0], t, i, last, byNode, constant));
  });
  return units;
}
