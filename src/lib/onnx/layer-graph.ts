/**
 * The model as a small graph of what a student cares about: the weighted layers, the
 * joins (Add/Sum/Concat) that make residual branches, the input and the output, with an
 * edge wherever data flows between them through other ops (activations, pools, reshapes).
 * Layout-free (the UI lays it out); names come from layer-names.ts. Pure graph reading.
 */
import { type Graph, type Node, producerOf } from './ir.ts';
import { isWeightedLayer, layerKey, layerNames } from './layer-names.ts';

export interface LayerGraphNode {
  /** unique id: the layer key for layers, 'input' / 'output', or `join:<node key>` */
  id: string;
  kind: 'layer' | 'join' | 'input' | 'output';
  /** readable label ("block 16 · project 1×1", "add", "input") */
  label: string;
  /** ONNX node name ('' when none) */
  onnx: string;
  opType: string;
}

export interface LayerGraph {
  nodes: LayerGraphNode[];
  edges: { from: string; to: string }[];
}

const JOIN_OPS = new Set(['Add', 'Sum', 'Concat']);

/** Layers, joins, input and output of `g` and the data flow between them. */
export function layerGraph(g: Graph): LayerGraph {
  const names = layerNames(g);
  const producers = producerOf(g);
  const kept = new Map<Node, LayerGraphNode>();
  const nodes: LayerGraphNode[] = [
    { id: 'input', kind: 'input', label: 'input', onnx: g.inputs[0]?.name ?? '', opType: 'Input' },
  ];
  for (const n of g.nodes) {
    if (isWeightedLayer(g, n)) {
      const key = layerKey(n);
      const nm = names.get(key);
      const v: LayerGraphNode = { id: key, kind: 'layer', label: nm?.label ?? key, onnx: n.name, opType: n.opType };
      kept.set(n, v);
      nodes.push(v);
    } else if (JOIN_OPS.has(n.opType) && n.inputs.filter((i) => i && !g.initializers.has(i)).length >= 2) {
      const v: LayerGraphNode = {
        id: `join:${layerKey(n)}`,
        kind: 'join',
        label: n.opType.toLowerCase(),
        onnx: n.name,
        opType: n.opType,
      };
      kept.set(n, v);
      nodes.push(v);
    }
  }
  const inputs = new Set(g.inputs.map((v) => v.name));
  // kept nodes (or the input) whose data reaches tensor t through unkept ops only
  const memo = new Map<string, string[]>();
  function sources(t: string): string[] {
    const hit = memo.get(t);
    if (hit) return hit;
    memo.set(t, []); // cycle guard (graphs are acyclic; this only bounds bad input)
    const out = new Set<string>();
    if (inputs.has(t)) out.add('input');
    const p = producers.get(t);
    if (p) {
      const k = kept.get(p);
      if (k) out.add(k.id);
      else for (const i of p.inputs) if (i && !g.initializers.has(i)) for (const s of sources(i)) out.add(s);
    }
    const r = [...out];
    memo.set(t, r);
    return r;
  }
  const edges: { from: string; to: string }[] = [];
  const seen = new Set<string>();
  const link = (from: string, to: string) => {
    const k = `${from}\u0000${to}`;
    if (!seen.has(k)) {
      seen.add(k);
      edges.push({ from, to });
    }
  };
  for (const n of g.nodes) {
    const k = kept.get(n);
    if (!k) continue;
    for (const i of n.inputs) if (i && !g.initializers.has(i)) for (const s of sources(i)) link(s, k.id);
  }
  if (g.outputs.length) {
    nodes.push({ id: 'output', kind: 'output', label: 'output', onnx: g.outputs[0].name, opType: 'Output' });
    for (const o of g.outputs) for (const s of sources(o.name)) link(s, 'output');
  }
  return { nodes, edges };
}
