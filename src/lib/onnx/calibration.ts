/**
 * Calibration graphs: the model plus in-graph reductions of chosen activation tensors
 * as extra (tiny) outputs, so calibration never fetches whole activations for the
 * MinMax / EMA / ClipStd observers and for per-channel BN statistics. Returns new
 * graphs; never mutates its input, never runs anything.
 *
 * Reductions are float32 in the graph (the engine returns float32 only): sums over
 * millions of elements carry float32 accumulation error (relative ~1e-6..1e-4), which
 * observers must tolerate; accumulate across batches in float64 in JS.
 */
import { QpError } from '../util/errors.ts';
import { type Graph, type Node, NameAllocator, cloneGraph, makeNode, makeTensor } from './ir.ts';

export interface StatsOutputs {
  /** output names of the scalar reductions of one tensor */
  min: string;
  max: string;
  /** Σx and Σx², only when moments were requested */
  sum?: string;
  sumSq?: string;
  /** the tensor's shape (int64; the engine hands it over as float32), unless shapes were left out */
  dims?: string;
}

export interface StatsGraphOptions {
  /** add ReduceSum / ReduceSumSquare (ClipStd needs them; each costs a pass over the tensor) */
  moments?: boolean;
  /**
   * add each tensor's Shape as an output (default true). Leave it out for onnxruntime's WebGPU
   * provider, which runs the Shape's int64 helpers (the Gather its NHWC layout adds) on the
   * CPU; the caller then counts elements another way (experiment/calibrate.ts).
   */
  shapes?: boolean;
}

export interface ChannelStatsOutputs {
  /** output names of [C] vectors: mean of x and of x² over all axes but 1 */
  mean: string;
  meanSq: string;
}

function knownTensors(g: Graph): Set<string> {
  return new Set<string>([...g.inputs.map((v) => v.name), ...g.nodes.flatMap((n) => n.outputs)]);
}

function check(g: Graph, tensors: string[]): void {
  const known = knownTensors(g);
  for (const t of tensors) {
    if (!known.has(t))
      throw new QpError('INTERNAL', `Cannot collect statistics of "${t}": no node or graph input produces it.`);
  }
}

/**
 * Add ReduceMin, ReduceMax (and with `moments` ReduceSum, ReduceSumSquare) over all axes
 * (keepdims=0, no `axes` given: portable across opsets 1–21) of each tensor as scalar
 * graph outputs, plus its shape (see StatsGraphOptions.shapes) so the caller knows element
 * counts. Throws QpError INTERNAL for an unknown tensor.
 */
export function buildStatsGraph(
  g: Graph,
  tensors: string[],
  opts: StatsGraphOptions = { moments: true },
): { graph: Graph; outputs: Map<string, StatsOutputs> } {
  check(g, tensors);
  const out = cloneGraph(g, { shareInitializers: true });
  const names = new NameAllocator(out);
  const outputs = new Map<string, StatsOutputs>();
  const added: Node[] = [];
  for (const t of new Set(tensors)) {
    const o: StatsOutputs = { min: names.take(`${t}__min`), max: names.take(`${t}__max`) };
    added.push(
      makeNode('ReduceMin', [t], [o.min], { keepdims: 0 }, { name: names.take(`${t}__stats/ReduceMin`) }),
      makeNode('ReduceMax', [t], [o.max], { keepdims: 0 }, { name: names.take(`${t}__stats/ReduceMax`) }),
    );
    out.outputs.push({ name: o.min, dtype: 'float32', shape: [] }, { name: o.max, dtype: 'float32', shape: [] });
    if (opts.shapes ?? true) {
      o.dims = names.take(`${t}__dims`);
      added.push(makeNode('Shape', [t], [o.dims], {}, { name: names.take(`${t}__stats/Shape`) }));
      out.outputs.push({ name: o.dims, dtype: 'int64', shape: [null] });
    }
    if (opts.moments) {
      o.sum = names.take(`${t}__sum`);
      o.sumSq = names.take(`${t}__sumsq`);
      added.push(
        makeNode('ReduceSum', [t], [o.sum], { keepdims: 0 }, { name: names.take(`${t}__stats/ReduceSum`) }),
        makeNode(
          'ReduceSumSquare',
          [t],
          [o.sumSq],
          { keepdims: 0 },
          { name: names.take(`${t}__stats/ReduceSumSquare`) },
        ),
      );
      out.outputs.push({ name: o.sum, dtype: 'float32', shape: [] }, { name: o.sumSq, dtype: 'float32', shape: [] });
    }
    outputs.set(t, o);
  }
  // Reductions only read existing tensors, so appending them keeps topological order.
  out.nodes.push(...added);
  return { graph: out, outputs };
}

/**
 * Add per-channel means of x and x² (channel axis 1, reduced over all other axes) of each
 * tensor as [C] graph outputs. The tensor is viewed as [N, C, -1] (Reshape with 0 = keep),
 * so any rank ≥ 2 works without knowing it; ReduceMean gets axes [0, 2] as an attribute
 * before opset 18 and as an input from 18. Throws QpError INTERNAL for an unknown tensor.
 */
export function buildChannelStatsGraph(
  g: Graph,
  tensors: string[],
): { graph: Graph; outputs: Map<string, ChannelStatsOutputs> } {
  check(g, tensors);
  const out = cloneGraph(g, { shareInitializers: true });
  const names = new NameAllocator(out);
  const outputs = new Map<string, ChannelStatsOutputs>();
  const added: Node[] = [];
  const viewShape = names.take('chstats_view_shape');
  out.initializers.set(viewShape, makeTensor(viewShape, [3], [0n, 0n, -1n], 'int64'));
  const axesInput = out.opset >= 18;
  let axesName = '';
  if (axesInput) {
    axesName = names.take('chstats_axes');
    out.initializers.set(axesName, makeTensor(axesName, [2], [0n, 2n], 'int64'));
  }
  const reduceMean = (x: string, y: string, name: string) =>
    axesInput
      ? makeNode('ReduceMean', [x, axesName], [y], { keepdims: 0 }, { name })
      : makeNode('ReduceMean', [x], [y], { keepdims: 0, axes: [0, 2] }, { name });

  for (const t of new Set(tensors)) {
    const v = names.take(`${t}__chview`);
    const sq = names.take(`${t}__chsq`);
    const o: ChannelStatsOutputs = { mean: names.take(`${t}__chmean`), meanSq: names.take(`${t}__chmeansq`) };
    added.push(
      makeNode('Reshape', [t, viewShape], [v], {}, { name: names.take(`${t}__chstats/Reshape`) }),
      reduceMean(v, o.mean, names.take(`${t}__chstats/ReduceMean`)),
      makeNode('Mul', [v, v], [sq], {}, { name: names.take(`${t}__chstats/Square`) }),
      reduceMean(sq, o.meanSq, names.take(`${t}__chstats/ReduceMeanSq`)),
    );
    out.outputs.push(
      { name: o.mean, dtype: 'float32', shape: [null] },
      { name: o.meanSq, dtype: 'float32', shape: [null] },
    );
    outputs.set(t, o);
  }
  out.nodes.push(...added);
  return { graph: out, outputs };
}
