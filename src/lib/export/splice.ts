/**
 * Placing Q/DQ chains in an export graph: every consumer of a quantized tensor is rewired
 * to the chain's output, and each chain goes right after the node that produces its tensor
 * (graph inputs' chains first), so the node list stays topologically sorted. Shared by the
 * as-simulated export (qdq.ts) and the integer-kernel export (integer-qdq.ts). Edits `g`
 * in place (the callers work on their own copy).
 */
import type { Graph, Node } from '../onnx/ir.ts';

export interface Chain {
  nodes: Node[];
  /** the tensor consumers read instead of the quantized one */
  output: string;
}

/**
 * Rewires consumers and places chains (see module header). `head` nodes (weight and bias
 * DequantizeLinear) come first; `follow` places a node right after another (by name) and
 * chains its outputs too.
 */
export function spliceChains(
  g: Graph,
  chains: Map<string, Chain>,
  head: Node[],
  follow = new Map<string, Node>(),
): void {
  for (const n of g.nodes) n.inputs = n.inputs.map((i) => chains.get(i)?.output ?? i);
  const nodes: Node[] = [...head];
  const emit = (t: string) => nodes.push(...(chains.get(t)?.nodes ?? []));
  for (const v of g.inputs) emit(v.name);
  for (const n of g.nodes) {
    nodes.push(n);
    const next = follow.get(n.name);
    if (next) nodes.push(next);
    for (const o of [...n.outputs, ...(next ? next.outputs : [])]) emit(o);
  }
  g.nodes = nodes;
}
