/**
 * The graph view's columns (state/graph-layout.ts wrapColumns): a long chain with residual
 * branches, like MobileNet-V2's, is cut between rows into columns side by side; no node is
 * split, every node keeps its size, and edges that cross a cut are drawn in parts.
 */
import { describe, expect, it } from 'vitest';
import { layoutGraph, wrapColumns } from '../../src/lib/state/graph-layout.ts';
import type { LayerGraphView } from '../../src/lib/protocol/instant.ts';

/** input → 40 layers in blocks of 3, each block's output joined with its input (residual) → output */
function chain(blocks: number): LayerGraphView {
  const nodes: LayerGraphView['nodes'] = [{ id: 'in', kind: 'input', label: 'input', onnx: '', opType: '' }];
  const edges: LayerGraphView['edges'] = [];
  let prev = 'in';
  for (let b = 0; b < blocks; b++) {
    const ids = [0, 1, 2].map((k) => `c${b}_${k}`);
    for (const id of ids) nodes.push({ id, kind: 'layer', label: `block ${b} · ${id}`, onnx: id, opType: 'Conv' });
    edges.push({ from: prev, to: ids[0] }, { from: ids[0], to: ids[1] }, { from: ids[1], to: ids[2] });
    const j = `j${b}`;
    nodes.push({ id: j, kind: 'join', label: '+', onnx: '', opType: 'Add' });
    edges.push({ from: ids[2], to: j }, { from: prev, to: j });
    prev = j;
  }
  nodes.push({ id: 'out', kind: 'output', label: 'output', onnx: '', opType: '' });
  edges.push({ from: prev, to: 'out' });
  return { nodes, edges };
}

describe('graph columns', () => {
  const base = layoutGraph(chain(14));

  it('one column gives the layout back', () => {
    const w = wrapColumns(base, 1);
    expect(w.columns).toBe(1);
    expect(w.height).toBe(base.height);
  });

  it('four columns: a quarter of the height (about), four times the width, nothing overlaps', () => {
    expect(base.height).toBeGreaterThan(2000);
    const w = wrapColumns(base, 4);
    expect(w.columns).toBe(4);
    expect(w.height).toBeLessThan(base.height / 4 + 200);
    expect(w.width).toBeLessThanOrEqual(4 * base.width + 3 * 28);
    expect(w.nodes).toHaveLength(base.nodes.length);
    const box = (n: (typeof w.nodes)[number]) => [
      n.x - n.width / 2,
      n.y - n.height / 2,
      n.x + n.width / 2,
      n.y + n.height / 2,
    ];
    for (const n of w.nodes) {
      const [x0, y0, x1, y1] = box(n);
      expect(x0).toBeGreaterThanOrEqual(0);
      expect(y0).toBeGreaterThanOrEqual(0);
      expect(x1).toBeLessThanOrEqual(w.width + 1e-6);
      expect(y1).toBeLessThanOrEqual(w.height + 1e-6);
    }
    for (let i = 0; i < w.nodes.length; i++)
      for (let k = i + 1; k < w.nodes.length; k++) {
        const [a0, b0, a1, b1] = box(w.nodes[i]);
        const [c0, d0, c1, d1] = box(w.nodes[k]);
        const overlap = a0 < c1 && c0 < a1 && b0 < d1 && d0 < b1;
        expect(overlap, `${w.nodes[i].id} overlaps ${w.nodes[k].id}`).toBe(false);
      }
    // edges crossing a cut are drawn in more parts than the graph has edges
    expect(w.edges.length).toBeGreaterThan(base.edges.length);
    for (const e of w.edges) for (const p of e.points) expect(p.y).toBeLessThanOrEqual(w.height + 1e-6);
  });
});
