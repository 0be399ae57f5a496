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

/**
 * The layout cut into columns side by side, so a long chain (MobileNet-V2 is one column
 * about 3,000 px tall) fills the width it is given instead of a thin tall strip. Cuts fall
 * only between rows of nodes (no node is split); an edge that crosses a cut is drawn in two
 * parts, leaving the bottom of one column and entering the top of the next. `columns` 1
 * gives the layout back unchanged.
 */
export function wrapColumns(layout: GraphLayout, columns: number, gap = 28): GraphLayout & { columns: number } {
  const n = Math.max(1, Math.floor(columns));
  if (n === 1 || layout.nodes.length < 2) return { ...layout, columns: 1 };
  const target = layout.height / n;
  // the rows' extents, top to bottom; a cut may fall only in a gap between them
  const spans = layout.nodes.map((p) => [p.y - p.height / 2, p.y + p.height / 2] as const).sort((a, b) => a[0] - b[0]);
  const cuts: number[] = [];
  let reach = spans[0][1];
  for (let i = 1; i < spans.length && cuts.length < n - 1; i++) {
    const [top, bottom] = spans[i];
    if (top > reach && top >= target * (cuts.length + 1)) cuts.push((reach + top) / 2);
    reach = Math.max(reach, bottom);
  }
  const bounds = [0, ...cuts, layout.height];
  const col = (y: number) => {
    let c = 0;
    while (c < cuts.length && y > cuts[c]) c++;
    return c;
  };
  const height = Math.max(...bounds.slice(1).map((b, i) => b - bounds[i])) + 16;
  const step = layout.width + gap;
  const at = (x: number, y: number) => {
    const c = col(y);
    return { x: x + c * step, y: y - bounds[c] + (c ? 8 : 0) };
  };
  const nodes = layout.nodes.map((p) => ({ ...p, ...at(p.x, p.y) }));
  const edges: GraphLayout['edges'] = [];
  for (const e of layout.edges) {
    // split the polyline where it changes column: each part is drawn on its own
    let part: { x: number; y: number }[] = [];
    let c = e.points.length ? col(e.points[0].y) : 0;
    for (const p of e.points) {
      const pc = col(p.y);
      if (pc !== c && part.length) {
        const last = part[part.length - 1];
        edges.push({
          from: e.from,
          to: e.to,
          points: [...part, { x: last.x, y: bounds[c + 1] - bounds[c] + (c ? 8 : 0) }],
        });
        part = [{ ...at(p.x, p.y), y: pc ? 2 : 0 }];
        c = pc;
      }
      part.push(at(p.x, p.y));
    }
    if (part.length > 1) edges.push({ from: e.from, to: e.to, points: part });
  }
  return { width: step * (cuts.length + 1) - gap, height, nodes, edges, columns: cuts.length + 1 };
}
