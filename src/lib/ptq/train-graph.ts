/**
 * Training-step graphs for reconstruction without autograd. For one reconstruction unit
 * (a layer or a block: nodes of the FP32 graph from one input tensor to one output tensor)
 * this module writes an ONNX graph that runs the unit's fake-quantized forward pass on a
 * batch, the loss against the FP32 output (MQBench's: squared error summed over channels,
 * averaged over images and positions), and then — written by hand, op by op, in reverse
 * order — the backward pass: the gradient of the loss with respect to every learned weight
 * tensor (the soft-rounded weights the caller feeds) and every learned activation step size.
 * The graph runs on the engine like any model, so wasm, onnxruntime-node and WebGPU all
 * compute the gradients; nothing here runs a tensor operation itself.
 *
 * Backward rules (dY: gradient of the node's output):
 * - Conv: dX = ConvTranspose(dY, W) with the conv's strides, pads, dilations and groups
 *   (output_padding makes the size match X), for stride-1 depthwise convs a Conv of dY with
 *   the flipped kernel; dW = per group Σ over images and positions of
 *   im2col(X)·dYᵀ, the im2col done by a grouped Conv with one-hot kernels (as gram-graph.ts).
 * - Gemm / MatMul: the two matrix products of the chain rule; Relu, Clip, Min, Max: dY masked
 *   where the input passed through; Add, Sub, Mul, Div by constants; GlobalAveragePool,
 *   Flatten, Reshape, Identity: spread or reshape dY.
 * - Fake quantization y = s·clip(round(x/s), lo, hi) with the straight-through estimator and
 *   LSQ's step-size gradient (Esser et al. 2020, as PyTorch's learnable fake-quant computes
 *   it): dX = dY where round(x/s) is inside [lo, hi], else 0; ds = Σ dY·(c − x/s·inside),
 *   c the clipped code. QDrop's dropping (Wei et al. 2022) keeps the float value where the
 *   mask is 0: y' = x + m·(y − x), so dX gains dY·(1 − m) and ds sees dY·m.
 *
 * It must not choose what is learned or run sessions (unit-trainer.ts and block-recon.ts do).
 */
import { QpError } from '../util/errors.ts';
import type { QParams } from '../quant/types.ts';
import { type Graph, type Node, type TensorData, defaultMeta, makeNode, makeTensor } from '../onnx/ir.ts';

/** Opset of the generated graphs (ReduceSum's axes as an input; every op used exists there). */
export const TRAIN_OPSET = 13;

/** An activation quantizer on a tensor the unit reads. */
export interface UnitQuantizer {
  qparams: QParams;
  /** the step size is a graph input and its gradient an output (per-tensor only) */
  learn: boolean;
  /** QDrop: a 0/1 mask input chooses per element between the quantized and the float value */
  drop: boolean;
}

/** A weight tensor of a layer in the unit: fixed fake-quantized values, or a graph input. */
export interface UnitWeight {
  /** values of a fixed weight (ignored when learned) */
  values?: Float32Array;
  learn: boolean;
}

export interface UnitGraphSpec {
  /** the FP32 graph (opset ≥ 11): initializers and node attributes come from it */
  source: Graph;
  /** the unit's nodes in topological order (constant-only producers they need included) */
  nodes: readonly Node[];
  input: string;
  output: string;
  /** dims without the batch axis of every non-constant tensor the nodes read or write */
  shapes: ReadonlyMap<string, readonly number[]>;
  /** the batch of every feed; null leaves it symbolic (forward only) */
  batch: number | null;
  /** weight initializers of the unit's layers; initializers not listed are copied as they are */
  weights: ReadonlyMap<string, UnitWeight>;
  /** activation quantizers by the tensor they quantize */
  quantizers: ReadonlyMap<string, UnitQuantizer>;
  /** add the backward pass (needs a static batch) */
  backward: boolean;
  /**
   * compute the target in the graph: the FP32 unit (source weights, no quantizers) on the
   * input `fpInput` instead of feeding it (training on windows, where a stored target
   * would not match the window's borders)
   */
  fpTarget?: boolean;
}

export interface UnitGraph {
  graph: Graph;
  /** feed names: the unit input keeps its tensor name; learned weights keep their initializer names */
  target: string;
  /** the FP32 model's input of the unit, with fpTarget */
  fpInput?: string;
  scaleInputs: Map<string, string>;
  maskInputs: Map<string, string>;
  /** Σ (y − target)² over the batch, and that sum times the loss normalisation (static batch only) */
  sse: string;
  loss?: string;
  /** the unit's output as computed (for checks) */
  output: string;
  weightGrads: Map<string, string>;
  scaleGrads: Map<string, string>;
}

/** Ops the backward pass knows; a unit with any other op is not trained (see unsupportedOp). */
const DIFFERENTIABLE = new Set([
  'Conv',
  'Gemm',
  'MatMul',
  'Relu',
  'Clip',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Min',
  'Max',
  'GlobalAveragePool',
  'Flatten',
  'Reshape',
  'Identity',
  'Squeeze',
  'Unsqueeze',
  'Constant',
]);

/**
 * Why a node cannot be differentiated here (undefined when it can). `constant` says which
 * tensors are constants of the unit (initializers and what follows from them alone).
 */
export function unsupportedOp(n: Node, constant: (t: string) => boolean): string | undefined {
  if (n.domain !== '' && n.domain !== 'ai.onnx') return `${n.opType} (domain ${n.domain})`;
  if (!DIFFERENTIABLE.has(n.opType)) return n.opType;
  if (n.opType === 'Conv' && (n.attrs.auto_pad ?? 'NOTSET') !== 'NOTSET') return 'Conv with auto_pad';
  if (n.opType === 'Gemm' && n.attrs.transA === 1) return 'Gemm with transA';
  if ((n.opType === 'Min' || n.opType === 'Max') && n.inputs.length !== 2) return `${n.opType} of ${n.inputs.length}`;
  if ((n.opType === 'Div' || n.opType === 'Sub') && !constant(n.inputs[1]) && !constant(n.inputs[0]))
    return `${n.opType} of two activations`;
  if (n.opType === 'Div' && !constant(n.inputs[1])) return 'Div by an activation';
  if ((n.opType === 'MatMul' || n.opType === 'Conv' || n.opType === 'Gemm') && !constant(n.inputs[1]))
    return `${n.opType} of two activations`;
  return undefined;
}

/** Builds the nodes of one graph with fresh, collision-free names. */
class Builder {
  readonly nodes: Node[] = [];
  readonly inits = new Map<string, TensorData>();
  private n = 0;
  constructor(private readonly prefix: string) {}
  name(label: string): string {
    return `${this.prefix}${this.n++}_${label}`;
  }
  op(type: string, inputs: string[], attrs: Record<string, number | number[] | string> = {}, label = type): string {
    const out = this.name(label);
    this.nodes.push(makeNode(type, inputs, [out], attrs, { name: `${out}/${type}` }));
    return out;
  }
  f32(values: number[] | Float32Array, dims: number[], label = 'const'): string {
    const name = this.name(label);
    this.inits.set(name, makeTensor(name, dims, values instanceof Float32Array ? values : Float32Array.from(values)));
    return name;
  }
  i64(values: number[], label = 'shape'): string {
    const name = this.name(label);
    this.inits.set(name, makeTensor(name, [values.length], values.map(BigInt), 'int64'));
    return name;
  }
}

const FLOAT = 1;

/** The training (or forward-only) graph of a unit; see the module header. */
export function buildUnitGraph(spec: UnitGraphSpec): UnitGraph {
  const { source, shapes } = spec;
  if (spec.backward && spec.batch === null)
    throw new QpError('INTERNAL', 'A backward graph needs a static batch size.');
  const b = new Builder('~');
  const B = spec.batch;
  const dimsOf = (t: string): number[] => {
    const s = shapes.get(t);
    if (!s) throw new QpError('INTERNAL', `The reconstruction unit has no shape for tensor "${t}".`);
    return [...s];
  };
  const full = (t: string): number[] => [B ?? -1, ...dimsOf(t)];

  // constants: initializers of the source (weights replaced or turned into inputs) and constant nodes
  const constants = new Set<string>();
  const usedInits = new Map<string, TensorData>();
  const weightInputs = new Set<string>();
  for (const n of spec.nodes) {
    for (const i of n.inputs) {
      if (!i || usedInits.has(i) || weightInputs.has(i)) continue;
      const w = spec.weights.get(i);
      if (w?.learn) {
        weightInputs.add(i);
        continue;
      }
      const init = source.initializers.get(i);
      if (!init) continue;
      if (w && w.values && w.values.length !== init.data.length)
        throw new QpError('INTERNAL', `Fixed values for weight "${i}" do not match its size.`);
      usedInits.set(i, w?.values ? { ...init, dims: [...init.dims], data: w.values } : init);
      constants.add(i);
    }
    if (n.inputs.every((i) => !i || constants.has(i))) for (const o of n.outputs) constants.add(o);
  }
  const isConst = (t: string) => !t || constants.has(t);

  // forward: fake-quantizers on the tensors the nodes read
  const scaleInputs = new Map<string, string>();
  const maskInputs = new Map<string, string>();
  interface FqRecord {
    tensor: string;
    out: string;
    u: string;
    r: string;
    c: string;
    scale: string;
    mask?: string;
    learn: boolean;
  }
  const fqOf = new Map<string, FqRecord>();
  const inputsInfo: Graph['inputs'] = [
    { name: spec.input, dtype: 'float32', shape: [B ?? 'batch', ...dimsOf(spec.input)] },
  ];
  const addFq = (t: string): string => {
    const known = fqOf.get(t);
    if (known) return known.out;
    const q = spec.quantizers.get(t)!;
    const qp = q.qparams;
    const C = qp.scale.length;
    if ((q.learn || q.drop) && C !== 1)
      throw new QpError('INTERNAL', `Only per-tensor activation quantizers can be learned or dropped ("${t}").`);
    let scale: string;
    if (q.learn) {
      scale = `~scale:${t}`;
      scaleInputs.set(t, scale);
      inputsInfo.push({ name: scale, dtype: 'float32', shape: [] });
    } else if (C === 1) scale = b.f32([qp.scale[0]], [], 'scale');
    else scale = b.f32(Float32Array.from(qp.scale), channelDims(qp, dimsOf(t)), 'scale');
    const u = b.op('Div', [t, scale], {}, 'fq_div');
    const r = b.op('Round', [u], {}, 'fq_round');
    let c: string;
    if (C === 1) {
      const lo = b.f32([qp.qmin - qp.zeroPoint[0]], [], 'fq_lo');
      const hi = b.f32([qp.qmax - qp.zeroPoint[0]], [], 'fq_hi');
      c = b.op('Clip', [r, lo, hi], {}, 'fq_clip');
    } else {
      const pd = channelDims(qp, dimsOf(t));
      const lo = b.f32(
        Float32Array.from(qp.zeroPoint, (z) => qp.qmin - z),
        pd,
        'fq_lo',
      );
      const hi = b.f32(
        Float32Array.from(qp.zeroPoint, (z) => qp.qmax - z),
        pd,
        'fq_hi',
      );
      c = b.op('Min', [b.op('Max', [r, lo], {}, 'fq_max'), hi], {}, 'fq_min');
    }
    let out = b.op('Mul', [c, scale], {}, 'fq');
    let mask: string | undefined;
    if (q.drop) {
      const input = `~mask:${t}`;
      maskInputs.set(t, input);
      inputsInfo.push({ name: input, dtype: 'float32', shape: full(t) });
      mask = input;
      // x + m·(q − x): the quantized value where the mask is 1, the float one where it is 0
      // (arithmetic: onnxruntime's Where is several times slower than Mul or Add)
      out = b.op('Add', [t, b.op('Mul', [mask, b.op('Sub', [out, t], {}, 'fq_delta')], {}, 'fq_keep')], {}, 'fq_drop');
    }
    fqOf.set(t, { tensor: t, out, u, r, c, scale, mask, learn: q.learn });
    return out;
  };
  if (spec.quantizers.has(spec.input)) addFq(spec.input);

  const fwd: Node[] = [];
  const reads = new Map<Node, string[]>();
  for (const n of spec.nodes) {
    const ins = n.inputs.map((i) => (i && !isConst(i) && spec.quantizers.has(i) ? addFq(i) : i));
    const copy: Node = { ...n, inputs: ins, outputs: [...n.outputs], attrs: { ...n.attrs } };
    b.nodes.push(copy);
    fwd.push(copy);
    reads.set(copy, ins);
  }

  let target = '~target';
  let fpInput: string | undefined;
  if (spec.fpTarget) {
    fpInput = '~fp_input';
    inputsInfo.push({ name: fpInput, dtype: 'float32', shape: [B ?? 'batch', ...dimsOf(spec.input)] });
    target = fpCopy(b, spec, fpInput, constants, usedInits);
  } else inputsInfo.push({ name: target, dtype: 'float32', shape: [B ?? 'batch', ...dimsOf(spec.output)] });
  for (const w of weightInputs) {
    const init = source.initializers.get(w)!;
    inputsInfo.push({ name: w, dtype: 'float32', shape: [...init.dims] });
  }
  const diff = b.op('Sub', [spec.output, target], {}, 'diff');
  const sse = b.op('ReduceSum', [b.op('Mul', [diff, diff], {}, 'sq')], { keepdims: 0 }, 'sse');
  const outputs: Graph['outputs'] = [
    { name: sse, dtype: 'float32', shape: [] },
    { name: spec.output, dtype: 'float32', shape: [B ?? 'batch', ...dimsOf(spec.output)] },
  ];
  const result: UnitGraph = {
    graph: undefined as unknown as Graph,
    target,
    ...(fpInput ? { fpInput } : {}),
    scaleInputs,
    maskInputs,
    sse,
    output: spec.output,
    weightGrads: new Map(),
    scaleGrads: new Map(),
  };

  if (spec.backward) {
    // MQBench's loss: Σ over channels, mean over images and positions
    const outDims = dimsOf(spec.output);
    const norm = 1 / ((B as number) * outDims.slice(1).reduce((a, c) => a * c, 1));
    const loss = b.op('Mul', [sse, b.f32([norm], [], 'norm')], {}, 'loss');
    outputs.push({ name: loss, dtype: 'float32', shape: [] });
    result.loss = loss;
    backward(b, spec, fwd, reads, fqOf, isConst, weightInputs, diff, 2 * norm, result, outputs, full, dimsOf);
  }

  const graph: Graph = {
    opset: TRAIN_OPSET,
    inputs: inputsInfo,
    outputs,
    nodes: b.nodes,
    initializers: new Map([...usedInits, ...b.inits]),
    valueInfo: new Map(),
    meta: { ...defaultMeta(TRAIN_OPSET), graphName: 'reconstruction-unit' },
  };
  result.graph = graph;
  return result;
}

/**
 * The FP32 unit on `input`: the unit's nodes again with their tensors renamed, reading the
 * source's float weights. Returns the name of its output.
 */
function fpCopy(
  b: Builder,
  spec: UnitGraphSpec,
  input: string,
  constants: ReadonlySet<string>,
  inits: Map<string, TensorData>,
): string {
  const rename = new Map<string, string>([[spec.input, input]]);
  for (const w of spec.weights.keys()) {
    const init = spec.source.initializers.get(w);
    if (!init) continue;
    const name = b.name('fp_weight');
    inits.set(name, { ...init, name, dims: [...init.dims] });
    rename.set(w, name);
  }
  const name = (t: string) => {
    if (!t || constants.has(t)) return rename.get(t) ?? t;
    let r = rename.get(t);
    if (!r) rename.set(t, (r = b.name('fp')));
    return r;
  };
  for (const n of spec.nodes) {
    // constant-only nodes are shared with the quantized copy
    if (n.outputs.every((o) => !o || constants.has(o))) continue;
    b.nodes.push({
      ...n,
      name: b.name(`fp_${n.name}`),
      inputs: n.inputs.map(name),
      outputs: n.outputs.map(name),
      attrs: { ...n.attrs },
    });
  }
  return name(spec.output);
}

/** Broadcast dims of a per-channel quantizer's parameters for a tensor of per-image dims `dims`. */
function channelDims(qp: QParams, dims: readonly number[]): number[] {
  const rank = dims.length + 1;
  return [qp.scale.length, ...new Array(rank - 1 - qp.axis).fill(1)];
}

function backward(
  b: Builder,
  spec: UnitGraphSpec,
  fwd: Node[],
  reads: Map<Node, string[]>,
  fqOf: Map<string, { tensor: string; out: string; u: string; r: string; c: string; mask?: string; learn: boolean }>,
  isConst: (t: string) => boolean,
  weightInputs: Set<string>,
  diff: string,
  scale: number,
  result: UnitGraph,
  outputs: Graph['outputs'],
  full: (t: string) => number[],
  dimsOf: (t: string) => number[],
): void {
  // which tensors depend on something learned (only they need gradients)
  const learnedFq = new Map<string, string>();
  for (const f of fqOf.values()) if (f.learn) learnedFq.set(f.out, f.tensor);
  const fqByOut = new Map([...fqOf.values()].map((f) => [f.out, f]));
  const dep = new Set<string>([...weightInputs, ...learnedFq.keys()]);
  for (const n of fwd) {
    const ins = reads.get(n)!;
    if (ins.some((i) => dep.has(i) || (fqByOut.has(i) && dep.has(fqByOut.get(i)!.tensor))))
      for (const o of n.outputs) dep.add(o);
  }
  // fake-quant outputs of dependent tensors depend too
  for (const f of fqOf.values()) if (dep.has(f.tensor)) dep.add(f.out);

  const grads = new Map<string, string[]>();
  const addGrad = (t: string, g: string) => {
    const l = grads.get(t);
    if (l) l.push(g);
    else grads.set(t, [g]);
  };
  const gradOf = (t: string): string | undefined => {
    const l = grads.get(t);
    if (!l || !l.length) return undefined;
    let g = l[0];
    for (let i = 1; i < l.length; i++) g = b.op('Add', [g, l[i]], {}, 'gsum');
    grads.set(t, [g]);
    return g;
  };
  addGrad(spec.output, b.op('Mul', [diff, b.f32([scale], [], 'two_norm')], {}, 'dy'));

  /** gradient flowing into a tensor a node read: through its fake-quantizer when it has one */
  const wants = (t: string) => !isConst(t) && dep.has(t);

  for (let k = fwd.length - 1; k >= 0; k--) {
    const n = fwd[k];
    const ins = reads.get(n)!;
    // first the fake-quantizers on this node's outputs: their consumers all come later, so the
    // gradient of the quantized copy is complete, and it flows into the raw output
    for (const o of n.outputs) {
      const f = fqOf.get(o);
      if (f) fqBackward(b, f, gradOf(f.out), wants(o), addGrad, result, outputs);
    }
    const gy = n.outputs.length === 1 ? gradOf(n.outputs[0]) : undefined;
    if (gy) nodeBackward(b, spec, spec.nodes[k], ins, gy, wants, addGrad, weightInputs, result, outputs, full, dimsOf);
  }
  const fin = fqOf.get(spec.input);
  if (fin) fqBackward(b, fin, gradOf(fin.out), false, addGrad, result, outputs);
}

function fqBackward(
  b: Builder,
  f: { tensor: string; out: string; u: string; r: string; c: string; mask?: string; learn: boolean },
  gy: string | undefined,
  wantX: boolean,
  addGrad: (t: string, g: string) => void,
  result: UnitGraph,
  outputs: Graph['outputs'],
): void {
  if (!gy) return;
  // every pass below reads or writes a whole activation, so they are kept few: with
  // inside = [round(x/s) not clipped], gq = gy·m (gy without dropping) and gi = gq·inside,
  // dX = gy − gq + gi and ds = Σ gq·c − Σ gi·u
  const inside = b.op('Cast', [b.op('Equal', [f.c, f.r], {}, 'fq_eq')], { to: FLOAT }, 'fq_inside');
  const gq = f.mask ? b.op('Mul', [gy, f.mask], {}, 'fq_gq') : gy;
  const gi = b.op('Mul', [gq, inside], {}, 'fq_gi');
  if (wantX) addGrad(f.tensor, f.mask ? b.op('Add', [b.op('Sub', [gy, gq], {}, 'fq_gfloat'), gi], {}, 'fq_gx') : gi);
  if (f.learn) {
    const gs = b.op('Sub', [dot(b, gq, f.c), dot(b, gi, f.u)], {}, 'fq_gs');
    result.scaleGrads.set(f.tensor, gs);
    outputs.push({ name: gs, dtype: 'float32', shape: [1, 1] });
  }
}

/** Σ a·b over all elements as a [1, n]·[n, 1] product (one pass; [1, 1]). */
function dot(b: Builder, x: string, y: string): string {
  return b.op(
    'MatMul',
    [b.op('Reshape', [x, b.i64([1, -1])], {}, 'row'), b.op('Reshape', [y, b.i64([-1, 1])], {}, 'col')],
    {},
    'dot',
  );
}

function nodeBackward(
  b: Builder,
  spec: UnitGraphSpec,
  n: Node,
  ins: string[],
  gy: string,
  wants: (t: string) => boolean,
  addGrad: (t: string, g: string) => void,
  weightInputs: Set<string>,
  result: UnitGraph,
  outputs: Graph['outputs'],
  full: (t: string) => number[],
  dimsOf: (t: string) => number[],
): void {
  // ins[i] may be a fake-quant output: its gradient goes there, and fqBackward takes it on
  const want = (i: number) => !!ins[i] && wants(ins[i]);
  const mask = (cond: string) => b.op('Mul', [gy, b.op('Cast', [cond], { to: FLOAT }, 'mask')], {}, 'masked');
  const src = spec.source;
  switch (n.opType) {
    case 'Conv': {
      const [x, w] = ins;
      const outDims = dimsOf(n.outputs[0]);
      const xDims = dimsOf(spec.nodes.find((m) => m.name === n.name)!.inputs[0]);
      const wDims = [...src.initializers.get(w)!.dims];
      const group = typeof n.attrs.group === 'number' ? n.attrs.group : 1;
      const kh = wDims[2];
      const kw = wDims[3];
      const strides = (n.attrs.strides as number[] | undefined) ?? [1, 1];
      const pads = (n.attrs.pads as number[] | undefined) ?? [0, 0, 0, 0];
      const dil = (n.attrs.dilations as number[] | undefined) ?? [1, 1];
      if (wDims.length !== 4) throw new QpError('INTERNAL', `Only 2-D convolutions can be reconstructed (${n.name}).`);
      if (want(0)) {
        const outPad = [0, 1].map(
          (a) =>
            xDims[1 + a] -
            (strides[a] * (outDims[1 + a] - 1) + (wDims[2 + a] - 1) * dil[a] + 1 - pads[a] - pads[a + 2]),
        );
        if (outPad.some((p, a) => p < 0 || p >= Math.max(strides[a], dil[a])))
          throw new QpError('INTERNAL', `Cannot size the input gradient of ${n.name}.`);
        const flipPads = [0, 1, 0, 1].map((a, i) => (wDims[2 + a] - 1) * dil[a] - pads[i]);
        const depthwise = wDims[1] === 1 && group === wDims[0];
        let gx: string;
        if (depthwise && strides.every((v) => v === 1) && flipPads.every((v) => v >= 0)) {
          // stride 1: the input gradient is a depthwise conv of dY with the flipped kernel,
          // which onnxruntime runs about twice as fast as the equivalent ConvTranspose
          const flipped = b.op(
            'Slice',
            [w, b.i64([-1, -1]), b.i64([-(2 ** 31), -(2 ** 31)]), b.i64([2, 3]), b.i64([-1, -1])],
            {},
            'w_flip',
          );
          gx = b.op(
            'Conv',
            [gy, flipped],
            { group, kernel_shape: [kh, kw], pads: flipPads, dilations: dil },
            'conv_gx',
          );
        } else {
          gx = b.op(
            'ConvTranspose',
            [gy, w],
            { group, kernel_shape: [kh, kw], strides, pads, dilations: dil, output_padding: outPad },
            'conv_gx',
          );
        }
        addGrad(x, gx);
      }
      if (weightInputs.has(w)) {
        const gw = convWeightGrad(b, x, gy, wDims, group, strides, pads, dil, xDims, outDims);
        result.weightGrads.set(w, gw);
        outputs.push({ name: gw, dtype: 'float32', shape: wDims });
      }
      return;
    }
    case 'Gemm': {
      const [a, w] = ins;
      const alpha = typeof n.attrs.alpha === 'number' ? n.attrs.alpha : 1;
      const transB = n.attrs.transB === 1;
      if (want(0)) addGrad(a, b.op('Gemm', [gy, w], { alpha, transB: transB ? 0 : 1 }, 'gemm_ga'));
      if (weightInputs.has(w) || want(1)) {
        const gw = transB
          ? b.op('Gemm', [gy, a], { alpha, transA: 1 }, 'gemm_gw')
          : b.op('Gemm', [a, gy], { alpha, transA: 1 }, 'gemm_gw');
        if (weightInputs.has(w)) {
          result.weightGrads.set(w, gw);
          outputs.push({ name: gw, dtype: 'float32', shape: null });
        } else addGrad(w, gw);
      }
      return;
    }
    case 'MatMul': {
      const [a, w] = ins;
      const wDims = src.initializers.get(w)!.dims;
      if (want(0)) addGrad(a, b.op('MatMul', [gy, b.op('Transpose', [w], { perm: [1, 0] }, 'wt')], {}, 'mm_ga'));
      if (weightInputs.has(w) || want(1)) {
        const [K, Mo] = wDims;
        const a2 = b.op('Reshape', [a, b.i64([-1, K])], {}, 'mm_a2');
        const g2 = b.op('Reshape', [gy, b.i64([-1, Mo])], {}, 'mm_g2');
        const gw = b.op('MatMul', [b.op('Transpose', [a2], { perm: [1, 0] }, 'mm_at'), g2], {}, 'mm_gw');
        if (weightInputs.has(w)) {
          result.weightGrads.set(w, gw);
          outputs.push({ name: gw, dtype: 'float32', shape: [K, Mo] });
        } else addGrad(w, gw);
      }
      return;
    }
    case 'Relu':
      if (want(0)) addGrad(ins[0], mask(b.op('Greater', [ins[0], b.f32([0], [], 'zero')], {}, 'relu_on')));
      return;
    case 'Clip': {
      if (!want(0)) return;
      const [x, lo, hi] = ins;
      const conds: string[] = [];
      if (lo) conds.push(b.op('Greater', [x, lo], {}, 'clip_lo'));
      if (hi) conds.push(b.op('Less', [x, hi], {}, 'clip_hi'));
      if (!conds.length) addGrad(x, gy);
      else addGrad(x, mask(conds.length === 2 ? b.op('And', conds, {}, 'clip_in') : conds[0]));
      return;
    }
    case 'Min':
    case 'Max': {
      const [x0, x1] = ins;
      const cmp = n.opType === 'Min' ? 'Less' : 'Greater';
      const first = b.op(cmp, [x0, x1], {}, 'pick');
      if (want(0)) addGrad(x0, mask(first));
      if (want(1)) addGrad(x1, mask(b.op('Not', [first], {}, 'pick_other')));
      return;
    }
    case 'Add':
    case 'Sub': {
      const [x0, x1] = ins;
      for (const [i, t] of [x0, x1].entries()) {
        if (!want(i)) continue;
        if (!sameShape(full, spec, n, i)) throw new QpError('INTERNAL', `${n.name} broadcasts a learned tensor.`);
        addGrad(t, i === 1 && n.opType === 'Sub' ? b.op('Neg', [gy], {}, 'neg') : gy);
      }
      return;
    }
    case 'Mul': {
      const [x0, x1] = ins;
      if (want(0)) {
        if (!sameShape(full, spec, n, 0)) throw new QpError('INTERNAL', `${n.name} broadcasts a learned tensor.`);
        addGrad(x0, b.op('Mul', [gy, x1], {}, 'mul_g0'));
      }
      if (want(1)) {
        if (!sameShape(full, spec, n, 1)) throw new QpError('INTERNAL', `${n.name} broadcasts a learned tensor.`);
        addGrad(x1, b.op('Mul', [gy, x0], {}, 'mul_g1'));
      }
      return;
    }
    case 'Div':
      if (want(0)) addGrad(ins[0], b.op('Div', [gy, ins[1]], {}, 'div_g'));
      return;
    case 'GlobalAveragePool': {
      if (!want(0)) return;
      const xd = dimsOf(n.inputs[0]);
      const area = xd.slice(1).reduce((a, c) => a * c, 1);
      const spread = b.op('Expand', [gy, b.i64(full(n.inputs[0]))], {}, 'gap_spread');
      addGrad(ins[0], b.op('Mul', [spread, b.f32([1 / area], [], 'gap_area')], {}, 'gap_g'));
      return;
    }
    case 'Flatten':
    case 'Reshape':
    case 'Identity':
    case 'Squeeze':
    case 'Unsqueeze':
      if (want(0)) addGrad(ins[0], b.op('Reshape', [gy, b.i64(full(n.inputs[0]))], {}, 'reshape_g'));
      return;
    case 'Constant':
      return;
    default:
      throw new QpError('INTERNAL', `No backward rule for ${n.opType} (${n.name}).`);
  }
}

/** Whether input i of n has the output's shape (no broadcasting to undo). */
function sameShape(full: (t: string) => number[], spec: UnitGraphSpec, n: Node, i: number): boolean {
  const orig = spec.nodes.find((m) => m.name === n.name)!;
  const a = full(orig.inputs[i]);
  const y = full(orig.outputs[0]);
  return a.length === y.length && a.every((d, k) => d === y[k]);
}

/**
 * dW of a 2-D convolution Y = Conv(X, W) from X (as the conv read it) and dY, three ways:
 * - 1×1, stride 1, no padding, ungrouped: one matrix product over images and positions;
 * - depthwise (one input and one output channel per group) or ungrouped k×k: images and
 *   channels swap roles, and a Conv computes it directly: dW[m, c, i, j] = Σ_n Σ_yx
 *   dY[n, m, y, x]·X[n, c, i·d + y·s, j·d + x·s] is a convolution of X (channels as the
 *   batch, images as the channels) with dY as the kernel, its dilation the layer's stride
 *   and its stride the layer's dilation; the result may have a row or column more than the
 *   kernel (when the stride does not divide the input), which is sliced off;
 * - any other grouping: im2col by a grouped Conv with one-hot kernels, then per group a
 *   product of the columns with dY.
 * The swapped Conv keeps each group's work in cache, where the one-hot im2col writes k²
 * copies of the activation (measured on a depthwise 144×56×56 layer: it was the largest
 * cost of a MobileNet-V2 block's step).
 */
function convWeightGrad(
  b: Builder,
  x: string,
  gy: string,
  wDims: number[],
  group: number,
  strides: number[],
  pads: number[],
  dil: number[],
  xDims: number[],
  outDims: number[],
): string {
  const [M, cpg, kh, kw] = wDims;
  const C = cpg * group;
  const oneByOne = kh === 1 && kw === 1 && strides.every((v) => v === 1) && pads.every((v) => v === 0);
  if (oneByOne && group === 1) {
    // [B, C, P] → [C, B·P]; dY → [M, B·P]; dW = dY·Xᵀ
    const x2 = b.op('Reshape', [b.op('Transpose', [x], { perm: [1, 0, 2, 3] }, 'x_t'), b.i64([C, -1])], {}, 'x2');
    const g2 = b.op('Reshape', [b.op('Transpose', [gy], { perm: [1, 0, 2, 3] }, 'gy_t'), b.i64([M, -1])], {}, 'gy2');
    return b.op('Reshape', [b.op('Gemm', [g2, x2], { transB: 1 }, 'gw2'), b.i64(wDims)], {}, 'gw');
  }
  const depthwise = cpg === 1 && group === C && M === C;
  if (depthwise || group === 1) {
    const [H, W] = [xDims[1], xDims[2]];
    const [Ho, Wo] = [outDims[1], outDims[2]];
    const size = [0, 1].map((a) => {
      const n = [H, W][a] + pads[a] + pads[a + 2] - strides[a] * ([Ho, Wo][a] - 1) - 1;
      return Math.floor(n / dil[a]) + 1;
    });
    if (size[0] < kh || size[1] < kw) throw new QpError('INTERNAL', 'Cannot size a convolution weight gradient.');
    const xT = b.op('Transpose', [x], { perm: [1, 0, 2, 3] }, 'x_t');
    const gT = b.op('Transpose', [gy], { perm: [1, 0, 2, 3] }, 'gy_t');
    const attrs = { strides: dil, dilations: strides, pads, kernel_shape: [Ho, Wo] };
    let raw: string;
    if (depthwise) {
      // X as one image of C·B channels, C groups of B; dY as C kernels of B channels
      const x1 = b.op('Reshape', [xT, b.i64([1, -1, H, W])], {}, 'x_cb');
      raw = b.op('Conv', [x1, gT], { ...attrs, group: C }, 'gw_conv');
    } else {
      // X as C images of B channels; dY as M kernels of B channels → [C, M, ·, ·]
      raw = b.op(
        'Transpose',
        [b.op('Conv', [xT, gT], { ...attrs, group: 1 }, 'gw_conv')],
        { perm: [1, 0, 2, 3] },
        'gw_mc',
      );
    }
    const cut =
      size[0] === kh && size[1] === kw
        ? raw
        : b.op('Slice', [raw, b.i64([0, 0]), b.i64([kh, kw]), b.i64([2, 3])], {}, 'gw_slice');
    return b.op('Reshape', [cut, b.i64(wDims)], {}, 'gw');
  }
  // general grouping: one-hot im2col, [B, C·k², P] → [g, K, B·P]
  const K = cpg * kh * kw;
  const taps = kh * kw;
  const kernel = new Float32Array(C * taps * taps);
  for (let c = 0; c < C; c++) for (let o = 0; o < taps; o++) kernel[(c * taps + o) * taps + o] = 1;
  const cols = b.op(
    'Conv',
    [x, b.f32(kernel, [C * taps, 1, kh, kw], 'onehot')],
    { group: C, kernel_shape: [kh, kw], strides, pads, dilations: dil },
    'im2col',
  );
  const colsR = b.op(
    'Reshape',
    [b.op('Transpose', [cols], { perm: [1, 0, 2, 3] }, 'cols_t'), b.i64([group, K, -1])],
    {},
    'cols_g',
  );
  // dY [B, M, P] → [M, B, P] → [g, M/g, B·P] → [g, B·P, M/g]
  const gyR = b.op(
    'Transpose',
    [
      b.op(
        'Reshape',
        [b.op('Transpose', [gy], { perm: [1, 0, 2, 3] }, 'gy_t'), b.i64([group, M / group, -1])],
        {},
        'gy_g',
      ),
    ],
    { perm: [0, 2, 1] },
    'gy_gt',
  );
  const prod = b.op('MatMul', [colsR, gyR], {}, 'gw_g');
  return b.op('Reshape', [b.op('Transpose', [prod], { perm: [0, 2, 1] }, 'gw_t'), b.i64(wDims)], {}, 'gw');
}
