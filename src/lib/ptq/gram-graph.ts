/**
 * Gram matrices G = XXᵀ of the inputs of quantized layers, computed by the engine: the
 * solvers (AdaRound, GPTQ) need only G, and onnxruntime builds it far faster than JS.
 *
 * Conv: an im2col done by a grouped Conv with one-hot kernels (group = Cin, Cin·kh·kw
 * output channels, the layer's own strides/pads/dilations), so output channel
 * c·kh·kw + ky·kw + kx is exactly the input the weight W[:, c, ky, kx] multiplies and
 * the column order matches the weight's row-major layout. The result is viewed as
 * [groups, K, positions] and multiplied by its transpose: [groups, K, K] per batch, one
 * K×K matrix per group (9×9 per channel for depthwise). 1×1 stride-1 convs skip the
 * im2col. Gemm/MatMul: the input viewed as [positions, K], G = XᵀX.
 *
 * Only opset-7 ops (Conv, Transpose, Reshape, MatMul, Shape), so any model works.
 *
 * Memory: the engine never holds more than one batch's im2col and the K×K results;
 * callers split layers into several graphs so that the Gram outputs of one graph stay
 * under a budget (`planGramChunks`), e.g. ResNet-18's 3×3 convs (K up to 4,608, 85 MB
 * of float32 each) go in separate passes. All positions are used; none are subsampled.
 */
import { QpError } from '../util/errors.ts';
import { type Graph, type Node, NameAllocator, cloneGraph, makeNode, makeTensor } from '../onnx/ir.ts';
import type { WeightPoint } from '../onnx/placement.ts';

/** What a layer's Gram matrix looks like. */
export interface GramLayout {
  /** the layer's weight point */
  point: WeightPoint;
  /** the tensor the layer reads */
  input: string;
  groups: number;
  /** columns per group (Cin/groups·kh·kw, or K for Gemm/MatMul) */
  cols: number;
}

export interface GramOutputs {
  layout: GramLayout;
  /** [groups, cols, cols] */
  gram: string;
  /** shape of the [groups, cols, positions] (or [positions, cols]) view (int64, fetched as float): positions per batch */
  shape: string;
}

/**
 * How the Gram matrix of a weight point is laid out, or a reason why the layer cannot
 * be reconstructed (it then keeps round-to-nearest).
 */
export function gramLayout(g: Graph, point: WeightPoint): GramLayout | string {
  const node = g.nodes.find((n) => n.name === point.node);
  const w = g.initializers.get(point.initializer);
  if (!node || !w) return `layer ${point.node} not found`;
  if (point.opType === 'Conv') {
    if (w.dims.length !== 4) return `${point.node} is not a 2-D convolution`;
    const groups = typeof node.attrs.group === 'number' ? node.attrs.group : 1;
    return { point, input: node.inputs[0], groups, cols: w.dims[1] * w.dims[2] * w.dims[3] };
  }
  if (point.opType === 'Gemm' && node.attrs.transA === 1) return `${point.node} transposes its input (transA)`;
  if (node.inputs[1] !== point.initializer) return `${point.node} reads its weight as the first operand`;
  if (w.dims.length !== 2) return `${point.node} has a weight of rank ${w.dims.length}`;
  return { point, input: node.inputs[0], groups: 1, cols: w.dims[point.axis === 0 ? 1 : 0] };
}

/** Floats of Gram output one layer adds per graph. */
export function gramSize(l: GramLayout): number {
  return l.groups * l.cols * l.cols;
}

/** Splits layers into graphs whose Gram outputs hold at most `budget` floats (each layer at least alone). */
export function planGramChunks(layouts: GramLayout[], budget = 16 * 2 ** 20): GramLayout[][] {
  const chunks: GramLayout[][] = [];
  let cur: GramLayout[] = [];
  let size = 0;
  for (const l of layouts) {
    if (cur.length && size + gramSize(l) > budget) {
      chunks.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(l);
    size += gramSize(l);
  }
  if (cur.length) chunks.push(cur);
  return chunks;
}

interface Builder {
  out: Graph;
  names: NameAllocator;
  added: Node[];
  int64: (base: string, values: number[]) => string;
}

function builder(g: Graph): Builder {
  const out = cloneGraph(g, { shareInitializers: true });
  const names = new NameAllocator(out);
  const int64 = (base: string, values: number[]) => {
    const n = names.take(base);
    out.initializers.set(n, makeTensor(n, [values.length], values.map(BigInt), 'int64'));
    return n;
  };
  return { out, names, added: [], int64 };
}

/**
 * The im2col view of `input` as the layer `node` reads it: [groups, K, positions] for
 * Conv, [positions, K] for Gemm/MatMul.
 */
function im2colView(b: Builder, node: Node, l: GramLayout, input: string, tag: string): string {
  const { out, names, added } = b;
  const t = (s: string) => names.take(`${tag}/${s}`);
  if (l.point.opType !== 'Conv') {
    const view = t('view');
    added.push(
      makeNode('Reshape', [input, b.int64(`${tag}/view_shape`, [-1, l.cols])], [view], {}, { name: t('Reshape') }),
    );
    return view;
  }
  const w = out.initializers.get(l.point.initializer)!;
  const [, cinPerGroup, kh, kw] = w.dims;
  const cin = cinPerGroup * l.groups;
  const taps = kh * kw;
  const strides = (node.attrs.strides as number[] | undefined) ?? [1, 1];
  const pads = (node.attrs.pads as number[] | undefined) ?? [0, 0, 0, 0];
  const plain =
    taps === 1 &&
    strides.every((s) => s === 1) &&
    pads.every((p) => p === 0) &&
    (node.attrs.auto_pad ?? 'NOTSET') === 'NOTSET';
  let cols = input;
  if (!plain) {
    const kernel = new Float32Array(cin * taps * taps);
    for (let c = 0; c < cin; c++) for (let o = 0; o < taps; o++) kernel[(c * taps + o) * taps + o] = 1;
    const kName = names.take(`${tag}/im2col_kernel`);
    out.initializers.set(kName, makeTensor(kName, [cin * taps, 1, kh, kw], kernel));
    const attrs: Record<string, number | string | number[]> = { group: cin, kernel_shape: [kh, kw] };
    for (const a of ['strides', 'pads', 'dilations', 'auto_pad'] as const) {
      const v = node.attrs[a];
      if (v !== undefined) attrs[a] = v as number | string | number[];
    }
    cols = t('im2col');
    added.push(makeNode('Conv', [input, kName], [cols], attrs, { name: t('Im2col') }));
  }
  // [N, groups·K, H, W] → [groups·K, N, H, W] → [groups, K, N·H·W]
  const chw = t('cnhw');
  added.push(makeNode('Transpose', [cols], [chw], { perm: [1, 0, 2, 3] }, { name: t('Transpose') }));
  const view = t('view');
  added.push(
    makeNode(
      'Reshape',
      [chw, b.int64(`${tag}/view_shape`, [l.groups, l.cols, -1])],
      [view],
      {},
      { name: t('Reshape') },
    ),
  );
  return view;
}

/** [groups, K, K] = Σ over positions of a_i·b_j for two views of the same layout. */
function product(b: Builder, l: GramLayout, va: string, vb: string, tag: string): string {
  const { names, added } = b;
  const t = (s: string) => names.take(`${tag}/${s}`);
  const res = t('gram');
  if (l.point.opType === 'Conv') {
    const vbT = t('viewT');
    added.push(makeNode('Transpose', [vb], [vbT], { perm: [0, 2, 1] }, { name: t('TransposeView') }));
    added.push(makeNode('MatMul', [va, vbT], [res], {}, { name: t('MatMul') }));
  } else {
    // [positions, K]: aᵀb, then [1, K, K] like a one-group conv
    const vaT = t('viewT');
    added.push(makeNode('Transpose', [va], [vaT], { perm: [1, 0] }, { name: t('Transpose') }));
    const g2 = t('gram2d');
    added.push(makeNode('MatMul', [vaT, vb], [g2], {}, { name: t('MatMul') }));
    added.push(
      makeNode(
        'Reshape',
        [g2, b.int64(`${tag}/gram_shape`, [1, l.cols, l.cols])],
        [res],
        {},
        { name: t('ReshapeGram') },
      ),
    );
  }
  b.out.outputs.push({ name: res, dtype: 'float32', shape: [l.groups, l.cols, l.cols] });
  return res;
}

/**
 * The view's shape as an int64 output (the engine hands it over as float32): no Cast, which
 * onnxruntime's WebGPU provider has no int64 kernel for and would run on the CPU.
 */
function shapeOutput(b: Builder, view: string, tag: string): string {
  const shape = b.names.take(`${tag}/shape`);
  b.added.push(makeNode('Shape', [view], [shape], {}, { name: b.names.take(`${tag}/Shape`) }));
  b.out.outputs.push({ name: shape, dtype: 'int64', shape: [null] });
  return shape;
}

/**
 * A copy of `g` that also outputs, per layer, its Gram matrix summed over the batch and
 * the shape of the view it came from. The original outputs are kept (not fetched).
 */
export function buildGramGraph(g: Graph, layouts: GramLayout[]): { graph: Graph; outputs: GramOutputs[] } {
  const b = builder(g);
  const nodesByName = new Map(b.out.nodes.map((n) => [n.name, n]));
  const outputs: GramOutputs[] = [];
  for (const l of layouts) {
    const tag = `${l.point.node}__gram`;
    const view = im2colView(b, nodesByName.get(l.point.node)!, l, l.input, tag);
    outputs.push({ layout: l, gram: product(b, l, view, view, tag), shape: shapeOutput(b, view, tag) });
  }
  b.out.nodes.push(...b.added);
  return { graph: b.out, outputs };
}

export interface CrossGramOutputs extends GramOutputs {
  /** [groups, K, K]: Σ x·x̃ᵀ, FP32 input (rows) against the quantized model's input (columns) */
  cross: string;
}

/** Prefix of every tensor, node and initializer of the quantized copy in a merged graph. */
export const QUANT_PREFIX = 'q::';

/**
 * One graph running the FP32 model `fp` and the quantized model `quant` (same layers, same
 * input) side by side, with per layer the Gram matrix of the quantized model's input,
 * G̃ = X̃X̃ᵀ (`gram`), and the cross term XX̃ᵀ (`cross`): what ‖WX − W̃X̃‖² needs (inputs from
 * the quantized prefix, targets from FP32, as MQBench). Both graphs need the same opset.
 */
export function buildCrossGramGraph(
  fp: Graph,
  quant: Graph,
  layouts: GramLayout[],
): { graph: Graph; outputs: CrossGramOutputs[] } {
  if (fp.opset !== quant.opset)
    throw new QpError('INTERNAL', `Merging graphs of opsets ${fp.opset} and ${quant.opset}.`);
  const b = builder(fp);
  const inputs = new Set(quant.inputs.map((v) => v.name));
  const rn = (t: string) => (t === '' || inputs.has(t) ? t : QUANT_PREFIX + t);
  for (const [k, t] of quant.initializers) b.out.initializers.set(rn(k), { ...t, name: rn(k) });
  const quantNodes = quant.nodes.map((n) => ({
    ...n,
    name: QUANT_PREFIX + n.name,
    inputs: n.inputs.map(rn),
    outputs: n.outputs.map(rn),
  }));
  b.out.nodes.push(...quantNodes);
  for (const [k, v] of quant.valueInfo) b.out.valueInfo.set(rn(k), { ...v, name: rn(k) });
  const fpNodes = new Map(b.out.nodes.map((n) => [n.name, n]));
  const outputs: CrossGramOutputs[] = [];
  for (const l of layouts) {
    const tag = `${l.point.node}__xgram`;
    const node = fpNodes.get(l.point.node)!;
    const qNode = fpNodes.get(QUANT_PREFIX + l.point.node);
    if (!qNode) throw new QpError('INTERNAL', `The quantized model has no layer ${l.point.node}.`);
    const vx = im2colView(b, node, l, l.input, `${tag}/fp`);
    const vq = im2colView(b, qNode, l, qNode.inputs[0], `${tag}/q`);
    outputs.push({
      layout: l,
      gram: product(b, l, vq, vq, `${tag}/qq`),
      cross: product(b, l, vx, vq, `${tag}/xq`),
      shape: shapeOutput(b, vq, tag),
    });
  }
  b.out.nodes.push(...b.added);
  return { graph: b.out, outputs };
}

/** Positions one batch contributed, from the fetched shape output. */
export function positionsOf(o: GramOutputs, shape: ArrayLike<number>): number {
  return o.layout.point.opType === 'Conv' ? shape[2] : shape[0];
}
