/**
 * The quantized layers (Conv / Gemm / MatMul with initializer weights) as the analysis
 * and the fixes see them: which node, its output tensor, its output-channel count and
 * its effective per-channel bias, plus writing a corrected bias and per-channel-scaled
 * weights into a graph copy. Pure graph work: never runs anything, never mutates the
 * graph it is given (callers pass a copy to `setLayerParams`).
 */
import { QpError } from '../util/errors.ts';
import { type Graph, type Node, NameAllocator, makeTensor, pruneInitializers } from '../onnx/ir.ts';
import type { WeightPoint } from '../onnx/placement.ts';

export interface Layer {
  point: WeightPoint;
  /** index of the node in graph.nodes */
  nodeIndex: number;
  node: Node;
  /** display name: the node name, or `<opType>_<output>` when the node has none */
  name: string;
  output: string;
  /** output channels (the weight's output axis) */
  channels: number;
  /** per-channel bias can be corrected (Conv, Gemm with an initializer or no C) */
  biasable: boolean;
}

/** The layers of `points` in network order. Throws QpError INTERNAL if a weight's node is missing. */
export function findLayers(g: Graph, points: readonly WeightPoint[]): Layer[] {
  const byWeight = new Map<string, number>();
  g.nodes.forEach((n, i) => {
    if (
      (n.opType === 'Conv' || n.opType === 'Gemm' || n.opType === 'MatMul') &&
      n.inputs[1] &&
      !byWeight.has(n.inputs[1])
    )
      byWeight.set(n.inputs[1], i);
  });
  return points.map((point) => {
    const nodeIndex = byWeight.get(point.initializer);
    if (nodeIndex === undefined)
      throw new QpError('INTERNAL', `No layer reads the quantized weights "${point.initializer}".`);
    const node = g.nodes[nodeIndex];
    const w = g.initializers.get(point.initializer)!;
    const channels = w.dims[point.axis];
    let biasable = node.opType === 'Conv';
    if (node.opType === 'Gemm') {
      const c = node.inputs[2];
      const ct = c ? g.initializers.get(c) : undefined;
      biasable =
        !c ||
        (!!ct &&
          ct.dtype === 'float32' &&
          (ct.data.length === 1 || ct.data.length === channels) &&
          (ct.dims.length < 2 || ct.dims[0] === 1));
    }
    return {
      point,
      nodeIndex,
      node,
      name: node.name || `${node.opType}_${node.outputs[0]}`,
      output: node.outputs[0],
      channels,
      biasable,
    };
  });
}

/** The effective per-channel bias of a layer (beta·C for Gemm), zeros when absent. */
export function layerBias(g: Graph, layer: Layer): Float64Array {
  const b = new Float64Array(layer.channels);
  const n = g.nodes[layer.nodeIndex];
  const name = n.inputs[2];
  const t = name ? g.initializers.get(name) : undefined;
  if (!t) return b;
  const beta = n.opType === 'Gemm' && typeof n.attrs.beta === 'number' ? n.attrs.beta : 1;
  const d = t.data as Float32Array;
  for (let c = 0; c < layer.channels; c++) b[c] = beta * d[d.length === 1 ? 0 : c];
  return b;
}

/**
 * In graph `g` (a copy the caller owns of the graph `layers` came from, or a
 * fake-quantized version of it), give each listed layer a new bias initializer (and new
 * weights when given). Layers are found by their output tensor.
 * Gemm gets beta = 1 and a [C] bias. Names are fresh, so shared initializers are never
 * overwritten; initializers nothing reads any more are dropped from `g`. Throws QpError INTERNAL for a layer whose bias cannot be set.
 */
export function setLayerParams(
  g: Graph,
  params: { layer: Layer; bias: ArrayLike<number>; weights?: Float32Array }[],
): void {
  const names = new NameAllocator(g);
  const byOutput = new Map(g.nodes.map((n) => [n.outputs[0], n] as const));
  for (const { layer, bias, weights } of params) {
    if (!layer.biasable) throw new QpError('INTERNAL', `The bias of layer "${layer.name}" cannot be corrected.`);
    const n = byOutput.get(layer.output);
    if (!n || n.opType !== layer.node.opType)
      throw new QpError('INTERNAL', `Layer "${layer.name}" is not in the graph being corrected.`);
    const bName = names.take(`${layer.name}_bias_corrected`);
    g.initializers.set(bName, makeTensor(bName, [layer.channels], Float32Array.from(bias)));
    while (n.inputs.length < 3) n.inputs.push('');
    n.inputs[2] = bName;
    if (n.opType === 'Gemm') {
      n.attrs.beta = 1;
      if (n.attrTypes) n.attrTypes.beta = 'float';
    }
    if (weights) {
      const old = g.initializers.get(n.inputs[1])!;
      const wName = names.take(`${n.inputs[1]}_corrected`);
      g.initializers.set(wName, { name: wName, dtype: 'float32', dims: [...old.dims], data: weights });
      n.inputs[1] = wName;
    }
  }
  pruneInitializers(g);
}

/** Weights with output channel c multiplied by scale[c] (a new array). */
export function scaleChannels(
  data: Float32Array,
  dims: readonly number[],
  axis: number,
  scale: ArrayLike<number>,
): Float32Array {
  const C = dims[axis];
  let inner = 1;
  for (let k = axis + 1; k < dims.length; k++) inner *= dims[k];
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] * scale[Math.floor(i / inner) % C];
  return out;
}
