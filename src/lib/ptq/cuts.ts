/**
 * Single-tensor cuts of a graph, so that a layer-by-layer pass can resume from a stored
 * activation instead of running the model from its input every time.
 *
 * A cut is a gap in the (topologically sorted) node list where exactly one computed
 * tensor is live: everything after the gap depends only on that tensor and on constants.
 * In MobileNet-V2, ResNet and EfficientNet-Lite every block boundary is one (the residual
 * stream), and so is every layer boundary inside a block without a skip connection.
 * Quantized-prefix reconstruction (reconstruct.ts) keeps the values of the latest cut
 * before the current layer for all calibration images, and each layer's pass runs only
 * the segment from that cut to the layer.
 */
import { type Graph, type Node, type ValueInfo, pruneInitializers, producerOf, subgraphRefs } from '../onnx/ir.ts';

export interface Cut {
  /** index of the first node after the gap (0: before any node) */
  gap: number;
  /** the only live tensor at the gap */
  tensor: string;
}

function readsOf(n: Node): string[] {
  return [...n.inputs, ...subgraphRefs(n)].filter((t) => t !== '');
}

/**
 * Tensors computed from constants only (initializers, Constant nodes and what follows
 * from them alone): a segment recomputes them, so they never keep a gap from being a cut.
 */
function constantTensors(g: Graph): Set<string> {
  const k = new Set<string>(g.initializers.keys());
  for (const n of g.nodes) if (readsOf(n).every((t) => k.has(t))) for (const o of n.outputs) if (o) k.add(o);
  return k;
}

/** Every single-tensor cut of `g`, by increasing gap (gap 0 when the graph has one input). */
export function singleTensorCuts(g: Graph): Cut[] {
  const constant = constantTensors(g);
  const n = g.nodes.length;
  const born = new Map<string, number>();
  const lastUse = new Map<string, number>();
  for (const v of g.inputs) if (!constant.has(v.name)) born.set(v.name, 0);
  g.nodes.forEach((node, i) => {
    for (const t of readsOf(node)) if (!constant.has(t)) lastUse.set(t, Math.max(lastUse.get(t) ?? -1, i));
    for (const o of node.outputs) if (o && !constant.has(o)) born.set(o, i + 1);
  });
  // graph outputs stay live to the end
  for (const o of g.outputs) if (born.has(o.name)) lastUse.set(o.name, n);
  // tensor t is live at gaps born(t) … lastUse(t)
  const opening = new Map<number, string[]>();
  const closing = new Map<number, string[]>();
  const add = (m: Map<number, string[]>, gap: number, t: string) => {
    const list = m.get(gap);
    if (list) list.push(t);
    else m.set(gap, [t]);
  };
  for (const [t, b] of born) {
    const u = lastUse.get(t);
    if (u === undefined || u < b) continue;
    add(opening, b, t);
    add(closing, u + 1, t);
  }
  const live = new Set<string>();
  const cuts: Cut[] = [];
  for (let gap = 0; gap <= n; gap++) {
    for (const t of closing.get(gap) ?? []) live.delete(t);
    for (const t of opening.get(gap) ?? []) live.add(t);
    if (live.size !== 1 || gap === n) continue;
    const tensor = [...live][0];
    // a constant-only node between two gaps leaves the same tensor live: keep the later gap
    if (cuts.at(-1)?.tensor === tensor) cuts.pop();
    cuts.push({ gap, tensor });
  }
  return cuts;
}

/** Position of every node of `g` by name. */
export function nodePositions(g: Graph): Map<string, number> {
  return new Map(g.nodes.map((n, i) => [n.name, i]));
}

/**
 * The latest cut at or before `position` (the node that must still run) that `usable`
 * accepts, or undefined when there is none.
 */
export function latestCut(
  cuts: readonly Cut[],
  position: number,
  usable: (c: Cut) => boolean = () => true,
): Cut | undefined {
  let best: Cut | undefined;
  for (const c of cuts) if (c.gap <= position && usable(c)) best = c;
  return best;
}

/**
 * Turns `g` (in place) into the segment that computes `outputs` from `inputs`: the given
 * tensors become the graph's inputs and only the nodes between them and the outputs stay.
 * Throws when the outputs need a tensor that neither the inputs nor constants provide.
 */
export function cutSegment(g: Graph, inputs: readonly ValueInfo[], outputs: readonly ValueInfo[]): void {
  const from = new Set(inputs.map((v) => v.name));
  const producer = producerOf(g);
  const needed = new Set<Node>();
  const stack = outputs.map((o) => o.name);
  const seen = new Set<string>();
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t) || from.has(t) || g.initializers.has(t)) continue;
    seen.add(t);
    const n = producer.get(t);
    if (!n) throw new Error(`Segment needs "${t}", which none of its inputs (${[...from].join(', ')}) provides.`);
    if (needed.has(n)) continue;
    needed.add(n);
    stack.push(...readsOf(n));
  }
  g.inputs = inputs.map((v) => ({ ...v }));
  // an inner tensor that became an input must not also be declared as an inner value
  for (const v of inputs) g.valueInfo.delete(v.name);
  g.outputs = outputs.map((v) => ({ ...v }));
  g.nodes = g.nodes.filter((n) => needed.has(n));
  pruneInitializers(g);
}
