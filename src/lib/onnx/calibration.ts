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
 * A maker of Reduce* nodes (keepdims=0) over fixed `axes`, in the form the graph's opset
 * wants: the `axes` attribute before opset 18, an int64 input from 18 (its initializer,
 * named from `base`, added to `out` once, here).
 */
function reducerOver(
  out: Graph,
  names: NameAllocator,
  axes: number[],
  base: string,
): (op: 'ReduceMin' | 'ReduceMax' | 'ReduceMean', x: string, y: string, name: string) => Node {
  if (out.opset < 18) return (op, x, y, name) => makeNode(op, [x], [y], { keepdims: 0, axes }, { name });
  const axesName = names.take(base);
  out.initializers.set(axesName, makeTensor(axesName, [axes.length], axes.map(BigInt), 'int64'));
  return (op, x, y, name) => makeNode(op, [x, axesName], [y], { keepdims: 0 }, { name });
}

/**
 * Add the minimum and maximum (and with `moments` ReduceSum, ReduceSumSquare over all axes,
 * keepdims=0, no `axes`: portable across opsets 1–21) of each tensor as scalar graph
 * outputs, plus its shape (see StatsGraphOptions.shapes) so the caller knows element counts.
 * Min and max take two steps: per image (the tensor flattened to [N, rest], reduced over
 * axis 1), then over the N values. The result is the same number (a minimum does not depend
 * on the order), but onnxruntime splits the first step over its threads and reduces each
 * row on a faster path than a reduction over all axes (docs/performance.md). The tensors
 * must have a batch axis (rank ≥ 1), as every activation does.
 * Throws QpError INTERNAL for an unknown tensor.
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
  const perRow = reducerOver(out, names, [1], 'stats_row_axes');
  for (const t of new Set(tensors)) {
    const o: StatsOutputs = { min: names.take(`${t}__min`), max: names.take(`${t}__max`) };
    const rows = names.take(`${t}__rows`);
    const rowMin = names.take(`${t}__rowmin`);
    const rowMax = names.take(`${t}__rowmax`);
    added.push(
      makeNode('Flatten', [t], [rows], { axis: 1 }, { name: names.take(`${t}__stats/Flatten`) }),
      perRow('ReduceMin', rows, rowMin, names.take(`${t}__stats/RowMin`)),
      perRow('ReduceMax', rows, rowMax, names.take(`${t}__stats/RowMax`)),
      makeNode('ReduceMin', [rowMin], [o.min], { keepdims: 0 }, { name: names.take(`${t}__stats/ReduceMin`) }),
      makeNode('ReduceMax', [rowMax], [o.max], { keepdims: 0 }, { name: names.take(`${t}__stats/ReduceMax`) }),
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
  const overAxes = reducerOver(out, names, [0, 2], 'chstats_axes');

  for (const t of new Set(tensors)) {
    const v = names.take(`${t}__chview`);
    const sq = names.take(`${t}__chsq`);
    const o: ChannelStatsOutputs = { mean: names.take(`${t}__chmean`), meanSq: names.take(`${t}__chmeansq`) };
    added.push(
      makeNode('Reshape', [t, viewShape], [v], {}, { name: names.take(`${t}__chstats/Reshape`) }),
      overAxes('ReduceMean', v, o.mean, names.take(`${t}__chstats/ReduceMean`)),
      makeNode('Mul', [v, v], [sq], {}, { name: names.take(`${t}__chstats/Square`) }),
      overAxes('ReduceMean', sq, o.meanSq, names.take(`${t}__chstats/ReduceMeanSq`)),
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

export interface StridedSamples {
  graph: Graph;
  /**
   * The float input that sets where sampling starts: feed it with `offset + 1` elements
   * (any values) to take elements offset, offset + stride, … (the engine takes float inputs
   * only, so the start travels as a length; see samplePhase).
   */
  phase: string;
  /** per tensor, the output holding its sample (1-D) */
  outputs: Map<string, string>;
}

/** The `phase` feed that makes addStridedSamples start at `offset`. */
export function samplePhase(offset: number): { data: Float32Array; dims: number[] } {
  return { data: new Float32Array(offset + 1), dims: [offset + 1] };
}

/**
 * Add, for each tensor, an output with every `stride`-th element of it flattened in
 * memory order, from a start chosen per run (`phase`): exactly the values
 * accumulateCountsStrided(data, …, stride, offset) reads of the whole tensor, so a caller
 * that bins a sample fetches a third of each activation instead of all of it. Needs opset
 * ≥ 10 (Slice with steps); Reshape, Shape, Sub and Slice work on int64 index tensors, which
 * onnxruntime's WebGPU provider runs on the CPU, so it is for the CPU engines. Returns a
 * new graph; throws QpError INTERNAL for an unknown tensor or an older opset.
 */
export function addStridedSamples(g: Graph, tensors: string[], stride: number): StridedSamples {
  check(g, tensors);
  if (g.opset < 10) throw new QpError('INTERNAL', `Strided samples need opset 10 or newer, the graph has ${g.opset}.`);
  if (!(Number.isInteger(stride) && stride >= 1))
    throw new QpError('INTERNAL', `A sampling stride must be a positive integer, got ${stride}.`);
  const out = cloneGraph(g, { shareInitializers: true });
  const names = new NameAllocator(out);
  const int64 = (base: string, v: bigint) => {
    const name = names.take(base);
    out.initializers.set(name, makeTensor(name, [1], [v], 'int64'));
    return name;
  };
  const phase = names.take('sample_phase');
  out.inputs.push({ name: phase, dtype: 'float32', shape: [null] });
  const flat = int64('sample_flat', -1n);
  const one = int64('sample_one', 1n);
  const end = int64('sample_end', 9223372036854775807n);
  const axis = int64('sample_axis', 0n);
  const step = int64('sample_step', BigInt(stride));
  const phaseLen = names.take('sample_phase_len');
  const start = names.take('sample_start');
  const added: Node[] = [
    makeNode('Shape', [phase], [phaseLen], {}, { name: names.take('sample/Shape') }),
    makeNode('Sub', [phaseLen, one], [start], {}, { name: names.take('sample/Start') }),
  ];
  const outputs = new Map<string, string>();
  for (const t of new Set(tensors)) {
    const f = names.take(`${t}__flat`);
    const s = names.take(`${t}__sample`);
    added.push(
      makeNode('Reshape', [t, flat], [f], {}, { name: names.take(`${t}__sample/Reshape`) }),
      makeNode('Slice', [f, start, end, axis, step], [s], {}, { name: names.take(`${t}__sample/Slice`) }),
    );
    out.outputs.push({ name: s, dtype: 'float32', shape: [null] });
    outputs.set(t, s);
  }
  out.nodes.push(...added);
  return { graph: out, phase, outputs };
}
