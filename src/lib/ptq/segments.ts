/**
 * Forward passes over a piece of a graph for every stored image: the segment from one
 * tensor to others (cuts.ts cutSegment) runs batch by batch over an ActivationSet. Used
 * by the block-wise reconstruction to gather each unit's inputs and targets, and to read
 * the per-image shape of every tensor of a unit.
 */
import { throwIfAborted } from '../util/errors.ts';
import type { Engine, FloatTensor } from '../engine/types.ts';
import { cloneGraph, type Graph, type Node, type ValueInfo } from '../onnx/ir.ts';
import { serializeModel } from '../onnx/model.ts';
import { ActivationSet } from './activation-set.ts';
import { cutSegment } from './cuts.ts';

/** A tensor's values for every calibration image. */
export interface Held {
  tensor: string;
  set: ActivationSet;
}

/** Runs the segment of `g` from `from` to `outputs` over every stored batch of `from`. */
export async function runSegment(
  engine: Engine,
  g: Graph,
  from: Held,
  outputs: string[],
  signal?: AbortSignal,
): Promise<Map<string, ActivationSet>> {
  const seg = cloneGraph(g, { shareInitializers: true });
  const inInfo: ValueInfo = { name: from.tensor, dtype: 'float32', shape: [null, ...from.set.dims] };
  cutSegment(
    seg,
    [inInfo],
    outputs.map((name) => ({ name, dtype: 'float32', shape: null })),
  );
  const session = await engine.createSession(serializeModel(seg));
  const out = new Map<string, ActivationSet>();
  try {
    for (const x of from.set.batches()) {
      throwIfAborted(signal);
      const res = await session.run({ [from.tensor]: x }, outputs);
      for (const name of outputs) {
        const y = res[name];
        let s = out.get(name);
        if (!s) out.set(name, (s = new ActivationSet(y.dims.slice(1))));
        s.push(y);
      }
    }
  } finally {
    await session.release();
  }
  return out;
}

/**
 * Per-image dims of every non-constant tensor that `nodes` read or write, from one input
 * image `sample` ([1, …]) of `input` (which may be smaller than the model's images).
 */
export async function tensorShapes(
  engine: Engine,
  g: Graph,
  nodes: readonly Node[],
  input: string,
  sample: FloatTensor,
): Promise<Map<string, number[]>> {
  const tensors = [...new Set(nodes.flatMap((n) => [...n.inputs, ...n.outputs]))].filter(
    (t) => t && t !== input && !g.initializers.has(t),
  );
  const one = new ActivationSet(sample.dims.slice(1));
  one.push(sample);
  const res = await runSegment(engine, g, { tensor: input, set: one }, tensors);
  const shapes = new Map<string, number[]>([[input, sample.dims.slice(1)]]);
  for (const [t, s] of res) shapes.set(t, [...s.dims]);
  return shapes;
}
