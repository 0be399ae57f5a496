/**
 * Readable names for the weighted layers (Conv / Gemm / MatMul) of any classifier graph,
 * derived from its structure alone so a user's model gets them too: "block 16 · project 1×1"
 * instead of "Conv_94". The ONNX node name is kept beside the label.
 *
 * How blocks are found: a block closes at a residual join (an Add that weighted layers feed
 * through normalization/identity ops only), or at a linear layer (no activation after it,
 * the projection of an inverted residual) that feeds no such join. The first layer is the
 * stem, a final Gemm/MatMul the classifier, and layers after the last closed block the
 * head. Roles come from the op kind: depthwise k×k, expand 1×1 (a 1×1 with an activation
 * that a later layer of its block reads), project 1×1 (linear), shortcut 1×1 (linear, not
 * reading its block's other layers), conv k×k, fully connected.
 *
 * Pure graph reading; never edits the graph. Works on folded and unfolded graphs.
 */
import { type Graph, type Node, consumersOf, producerOf } from './ir.ts';

export interface LayerName {
  /** the key the analysis uses: the node name, or `<opType>_<output>` when it has none */
  key: string;
  /** the ONNX node name ('' when the node has none) */
  onnx: string;
  /** e.g. "block 16" | "stem" | "head" | "classifier" */
  block: string;
  /** e.g. "project 1×1" | "depthwise 3×3" | "fully connected" */
  role: string;
  /** "block 16 · project 1×1" */
  label: string;
}

/** Ops a block boundary or a role looks through (they neither activate nor join). */
const PASS_THROUGH = new Set(['BatchNormalization', 'Identity', 'Dropout', 'Cast']);
const ACTIVATIONS = new Set([
  'Relu',
  'Clip',
  'LeakyRelu',
  'PRelu',
  'Sigmoid',
  'HardSigmoid',
  'HardSwish',
  'Tanh',
  'Elu',
  'Selu',
  'Gelu',
  'Swish',
  'Mish',
]);
const JOINS = new Set(['Add', 'Sum']);

/** The analysis key of a weighted node (same rule as src/lib/analysis/layers.ts). */
export function layerKey(n: Pick<Node, 'name' | 'opType' | 'outputs'>): string {
  return n.name || `${n.opType}_${n.outputs[0]}`;
}

/** Whether a node is a weighted layer: Conv/Gemm/MatMul whose second input is an initializer. */
export function isWeightedLayer(g: Graph, n: Node): boolean {
  return (
    (n.opType === 'Conv' || n.opType === 'Gemm' || n.opType === 'MatMul') &&
    !!n.inputs[1] &&
    g.initializers.has(n.inputs[1])
  );
}

/** "label (onnx name)" for display; the label alone when the names agree or the node has none. */
export function displayName(n: Pick<LayerName, 'label' | 'onnx'> | undefined, fallback: string): string {
  if (!n) return fallback;
  return n.onnx && n.onnx !== n.label ? `${n.label} (${n.onnx})` : n.label;
}

function kernelOf(g: Graph, n: Node): string {
  const w = g.initializers.get(n.inputs[1]);
  const ks = Array.isArray(n.attrs.kernel_shape) ? (n.attrs.kernel_shape as number[]) : (w?.dims.slice(2) ?? []);
  return ks.length ? ks.join('×') : '1×1';
}

function isDepthwise(g: Graph, n: Node): boolean {
  const w = g.initializers.get(n.inputs[1]);
  const group = typeof n.attrs.group === 'number' ? n.attrs.group : 1;
  return !!w && group > 1 && w.dims[1] === 1;
}

/** Readable names of every weighted layer of `g`, keyed by layerKey, in network order. */
export function layerNames(g: Graph): Map<string, LayerName> {
  const consumers = consumersOf(g);
  const producers = producerOf(g);
  const layers = g.nodes.filter((n) => isWeightedLayer(g, n));
  const out = new Map<string, LayerName>();
  if (layers.length === 0) return out;

  /** Follow a layer's output through pass-through ops: what reads it next. */
  function after(n: Node): { activated: boolean; join: Node | undefined } {
    let t = n.outputs[0];
    for (let guard = 0; guard < 16; guard++) {
      const cs = consumers.get(t) ?? [];
      // read by several nodes: a block output that branches (the next block and its skip)
      if (cs.length !== 1) return { activated: false, join: undefined };
      const c = cs[0];
      if (ACTIVATIONS.has(c.opType)) return { activated: true, join: undefined };
      if (JOINS.has(c.opType)) return { activated: false, join: c };
      if (!PASS_THROUGH.has(c.opType)) return { activated: false, join: undefined };
      t = c.outputs[0];
    }
    return { activated: false, join: undefined };
  }

  /** The weighted layers whose outputs reach tensor `t` without crossing another weighted layer or a join. */
  const feedCache = new Map<string, Set<Node>>();
  function feeders(t: string, depth = 0): Set<Node> {
    const hit = feedCache.get(t);
    if (hit) return hit;
    const s = new Set<Node>();
    const p = producers.get(t);
    if (p && depth < 64) {
      if (isWeightedLayer(g, p)) s.add(p);
      else if (!JOINS.has(p.opType))
        for (const i of p.inputs) if (i && !g.initializers.has(i)) for (const x of feeders(i, depth + 1)) s.add(x);
    }
    feedCache.set(t, s);
    return s;
  }

  const first = layers[0];
  const lastNode = layers[layers.length - 1];
  const classifier = layers.length > 1 && lastNode.opType !== 'Conv' ? lastNode : undefined;
  const stem = layers.length > 2 && first.opType === 'Conv' ? first : undefined;
  const info = new Map(layers.map((n) => [n, after(n)] as const));
  // weighted layers per join, to close a block once all of them are seen
  const perJoin = new Map<Node, number>();
  for (const [n, a] of info)
    if (a.join && n !== classifier && n !== stem) perJoin.set(a.join, (perJoin.get(a.join) ?? 0) + 1);

  const blocks: Node[][] = [];
  let current: Node[] = [];
  const seenPerJoin = new Map<Node, number>();
  for (const n of layers) {
    if (n === stem || n === classifier) continue;
    current.push(n);
    const a = info.get(n)!;
    let close = false;
    if (a.join) {
      const seen = (seenPerJoin.get(a.join) ?? 0) + 1;
      seenPerJoin.set(a.join, seen);
      close = seen === perJoin.get(a.join);
    } else if (!a.activated) {
      close = true;
    }
    if (close) {
      blocks.push(current);
      current = [];
    }
  }
  const head = current;

  function roleOf(n: Node, block: Node[]): string {
    if (n.opType !== 'Conv') return 'fully connected';
    const k = kernelOf(g, n);
    if (isDepthwise(g, n)) return `depthwise ${k}`;
    const group = typeof n.attrs.group === 'number' ? n.attrs.group : 1;
    if (group > 1) return `grouped ${k}`;
    if (k !== '1×1' || block.length < 2) return `conv ${k}`;
    const a = info.get(n)!;
    const inBlock = new Set(block);
    if (a.activated) {
      // an expansion when a later layer of the block reads it
      const readers = block.filter((m) => m !== n && [...feeders(m.inputs[0])].includes(n));
      return readers.length ? 'expand 1×1' : 'conv 1×1';
    }
    const fedByBlock = [...feeders(n.inputs[0])].some((m) => inBlock.has(m));
    return fedByBlock ? 'project 1×1' : 'shortcut 1×1';
  }

  function name(n: Node, block: string, role: string): void {
    const key = layerKey(n);
    out.set(key, { key, onnx: n.name, block, role, label: `${block} · ${role}` });
  }

  const ordered: [Node, string, string][] = [];
  if (stem) ordered.push([stem, 'stem', `conv ${kernelOf(g, stem)}`]);
  blocks.forEach((b, i) => {
    const roles = b.map((n) => roleOf(n, b));
    roles.forEach((r, j) => {
      const same = roles.filter((x) => x === r).length;
      const nth = roles.slice(0, j + 1).filter((x) => x === r).length;
      ordered.push([b[j], `block ${i + 1}`, same > 1 ? `${r} #${nth}` : r]);
    });
  });
  head.forEach((n) => ordered.push([n, 'head', roleOf(n, head.length > 1 ? head : [n])]));
  if (classifier) ordered.push([classifier, 'classifier', 'fully connected']);
  // network order, as the analysis lists layers
  const rank = new Map(layers.map((n, i) => [n, i] as const));
  ordered.sort((x, y) => rank.get(x[0])! - rank.get(y[0])!);
  for (const [n, b, r] of ordered) name(n, b, r);
  return out;
}
