/**
 * Layout of the model's layer graph for the graph view: dagre places the layers, joins,
 * input and output top to bottom (the chain with its residual branches beside it), so any
 * user model is drawn without per-architecture code. Also the colour value of a layer for
 * the chosen metric, normalised so that 0 is the worst layer and 1 the best.
 * Pure: data in, coordinates out; no DOM.
 */
import dagre from '@dagrejs/dagre';
import type { LayerGraphView } from '../protocol/instant.ts';

export interface PlacedNode {
  id: string;
  kind: LayerGraphView['nodes'][number]['kind'];
  label: string;
  onnx: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface GraphLayout {
  width: number;
  height: number;
  nodes: PlacedNode[];
  edges: { from: string; to: string; points: { x: number; y: number }[] }[];
}

/** Box sizes in px: layers carry a two-line label, joins are small circles. */
const LAYER = { width: 190, height: 34 };
const SMALL = { width: 46, height: 22 };

export function layoutGraph(view: LayerGraphView): GraphLayout {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 18, ranksep: 16, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of view.nodes) g.setNode(n.id, { ...(n.kind === 'layer' ? LAYER : SMALL) });
  for (const e of view.edges) g.setEdge(e.from, e.to);
  dagre.layout(g);
  const info = new Map(view.nodes.map((n) => [n.id, n] as const));
  const nodes: PlacedNode[] = g.nodes().map((id) => {
    const p = g.node(id);
    const n = info.get(id)!;
    return { id, kind: n.kind, label: n.label, onnx: n.onnx, x: p.x, y: p.y, width: p.width, height: p.height };
  });
  const edges = g.edges().map((e) => ({
    from: e.v,
    to: e.w,
    points: (g.edge(e).points ?? []).map((p: { x: number; y: number }) => ({ x: p.x, y: p.y })),
  }));
  const gl = g.graph();
  return { width: gl.width ?? 0, height: gl.height ?? 0, nodes, edges };
}

/**
 * Per layer, 0 (worst) … 1 (best) for `values` where `worse` says which direction is bad;
 * non-finite values (an exact layer: SQNR +∞) count as best. Equal values give 1.
 */
export function normaliseMetric(values: Map<string, number>, worse: 'low' | 'high'): Map<string, number> {
  const finite = [...values.values()].filter(Number.isFinite);
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const out = new Map<string, number>();
  for (const [k, v] of values) {
    if (!Number.isFinite(v) || !(hi > lo)) out.set(k, 1);
    else out.set(k, worse === 'low' ? (v - lo) / (hi - lo) : (hi - v) / (hi - lo));
  }
  return out;
}
