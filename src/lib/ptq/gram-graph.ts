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
 * Only opset-7 ops (Conv, Transpose, Reshape, MatMul, Shape, Cast), so any model works.
 *
 * Memory: the engine never holds more than one batch's im2col and the K×K results;
 * callers split layers into several graphs so that the Gram outputs of one graph stay
 * under a budget (`planGramChunks`), e.g. ResNet-18's 3×3 convs (K up to 4,608, 85 MB
 * of float32 each) go in separate passes. All positions are used; none are subsampled.
 */
import { QpError } from '../protocol/errors.ts';
import { type Graph, type Node, NameAllocator, cloneGraph, makeNode, makeTensor, producerOf } from '../onnx/ir.ts';
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
  /** float shape of the [groups, cols, positions] (or [positions, cols]) view: positions per batch */
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

/**
 * A copy of `g` that also outputs, per layer, its Gram matrix summed over the batch and
 * the shape of the view it came from. The original outputs are kept (not fetched).
 */
export function buildGramGraph(g: Graph, layouts: GramLayout[]): { graph: Graph; outputs: GramOutputs[] } {
  const out = cloneGraph(g, { shareInitializers: true });
  const names = new NameAllocator(out);
  const nodesByName = new Map(out.nodes.map((n) => [n.name, n]));
  const producers = producerOf(out);
  const added: Node[] = [];
  const outputs: GramOutputs[] = [];
  const int64 = (base: string, values: number[]) => {
    const n = names.take(base);
    out.initializers.set(n, makeTensor(n, [values.length], values.map(BigInt), 'int64'));
    return n;
  };
  for (const l of layouts) {
    const node = nodesByName.get(l.point.node)!;
    if (!producers.has(l.input) && !out.inputs.some((v) => v.name === l.input)) {
      throw new QpError('INTERNAL', `The input ${l.input} of ${l.point.node} is produced by nothing.`);
    }
    const tag = `${l.point.node}__gram`;
    const t = (s: string) => names.take(`${tag}/${s}`);
    let view: string;
    let transposed: string;
    let gram: string;
    if (l.point.opType === 'Conv') {
      const w = out.initializers.get(l.point.initializer)!;
      const [, cinPerGroup, kh, kw] = w.dims;
      const cin = cinPerGroup * l.groups;
      const taps = kh * kw;
      const strides = (node.attrs.strides as number[] | undefined) ?? [1, 1];
      const pads = (node.attrs.pads as number[] | undefined) ?? [0, 0, 0, 0];
      const plain = taps === 1 && strides.every((s) => s === 1) && pads.every((p) => p === 0) && (node.attrs.auto_pad ?? 'NOTSET') === 'NOTSET';
      let cols = l.input;
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
        added.push(makeNode('Conv', [l.input, kName], [cols], attrs, { name: t('Im2col') }));
      }
      // [N, groups·K, H, W] → [groups·K, N, H, W] → [groups, K, N·H·W]
      const chw = t('cnhw');
      added.push(makeNode('Transpose', [cols], [chw], { perm: [1, 0, 2, 3] }, { name: t('Transpose') }));
      view = t('view');
      added.push(makeNode('Reshape', [chw, int64(`${tag}/view_shape`, [l.groups, l.cols, -1])], [view], {}, { name: t('Reshape') }));
      transposed = t('viewT');
      added.push(makeNode('Transpose', [view], [transposed], { perm: [0, 2, 1] }, { name: t('TransposeView') }));
      gram = t('gram');
      added.push(makeNode('MatMul', [view, transposed], [gram], {}, { name: t('MatMul') }));
    } else {
      // [positions, K]: G = XᵀX, then [1, K, K] like a one-group conv
      view = t('view');
      added.push(makeNode('Reshape', [l.input, int64(`${tag}/view_shape`, [-1, l.cols])], [view], {}, { name: t('Reshape') }));
      transposed = t('viewT');
      added.push(makeNode('Transpose', [view], [transposed], { perm: [1, 0] }, { name: t('Transpose') }));
      const g2 = t('gram2d');
      added.push(makeNode('MatMul', [transposed, view], [g2], {}, { name: t('MatMul') }));
      gram = t('gram');
      added.push(makeNode('Reshape', [g2, int64(`${tag}/gram_shape`, [1, l.cols, l.cols])], [gram], {}, { name: t('ReshapeGram') }));
    }
    const shapeI = t('shape_i64');
    const shape = t('shape');
    added.push(makeNode('Shape', [view], [shapeI], {}, { name: t('Shape') }));
    added.push(makeNode('Cast', [shapeI], [shape], { to: 1 }, { name: t('Cast') }));
    out.outputs.push({ name: gram, dtype: 'float32', shape: [l.groups, l.cols, l.cols] }, { name: shape, dtype: 'float32', shape: [null] });
    outputs.push({ layout: l, gram, shape });
  }
  out.nodes.push(...added);
  return { graph: out, outputs };
}

/** Positions one batch contributed, from the fetched shape output. */
export function positionsOf(o: GramOutputs, shape: ArrayLike<number>): number {
  return o.layout.point.opType === 'Conv' ? shape[2] : shape[0];
}
