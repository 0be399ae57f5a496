/**
 * Fake-quantized graphs: quantized weights written into the initializers and, on each
 * chosen activation tensor, the float op chain Div(scale) → Round → Clip(qmin−zp,
 * qmax−zp) → Mul(scale). Plain float ops so the graph runs on wasm and WebGPU at any bit
 * width, and computes bit-exactly what the JS quantizer computes:
 *   y = fround(clip(roundHalfToEven(fround(x / s)), qmin − zp, qmax − zp) · s)
 * (Div, not Mul by a reciprocal; ONNX Round is half-to-even; folding the integer zero
 * point into the clip bounds is exact). Returns new graphs; never mutates its input.
 * It must not choose quantization parameters (src/lib/quant does).
 */
import { QpError } from '../util/errors.ts';
import type { QParams } from '../quant/types.ts';
import { type Graph, type Node, NameAllocator, cloneGraph, makeNode, makeTensor, shapeOf } from './ir.ts';

export interface FakeQuantSpec {
  /** initializer name → already fake-quantized values (same shape and length) */
  weights: Map<string, Float32Array>;
  /** activation tensor name → quantization parameters */
  activations: Map<string, QParams>;
}

/** Default-domain ops that mean the same at opset 11 as at 7–10 (or that we convert). */
const UPGRADE_SAFE = new Set([
  'Conv',
  'ConvTranspose',
  'Relu',
  'LeakyRelu',
  'PRelu',
  'Sigmoid',
  'HardSigmoid',
  'Tanh',
  'Softmax',
  'LogSoftmax',
  'Elu',
  'Selu',
  'Softplus',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Sum',
  'Max',
  'Min',
  'Mean',
  'Exp',
  'Log',
  'Sqrt',
  'Neg',
  'Abs',
  'Pow',
  'Reciprocal',
  'Floor',
  'Ceil',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'LRN',
  'BatchNormalization',
  'InstanceNormalization',
  'Flatten',
  'Reshape',
  'Transpose',
  'Concat',
  'Gemm',
  'MatMul',
  'Identity',
  'Dropout',
  'Squeeze',
  'Unsqueeze',
  'Shape',
  'Size',
  'Gather',
  'Constant',
  'Cast',
  'Tile',
  'Expand',
  'Where',
  'Equal',
  'Greater',
  'Less',
  'Not',
  'And',
  'Or',
  'ReduceMean',
  'ReduceSum',
  'ReduceMax',
  'ReduceMin',
  'ReduceSumSquare',
  'ReduceProd',
  'ArgMax',
  'ArgMin',
  'Split',
  'Clip',
  'Pad',
  'ConstantOfShape',
  'DepthToSpace',
  'SpaceToDepth',
]);

/**
 * Make sure the default-domain opset is at least `min` (≤ 11 supported): Round needs 11,
 * and Clip takes min/max as inputs from 11. Models at 7–10 are raised to `min` when all
 * their ops keep their meaning; Clip and Pad attributes are rewritten as inputs, a
 * BatchNormalization `spatial=1` attribute is dropped. Edits `g` in place (call it on a
 * copy). Throws QpError MODEL_UNSUPPORTED otherwise.
 */
export function ensureOpset(g: Graph, min: number): void {
  if (g.opset >= min) return;
  const names = new NameAllocator(g);
  const bad = new Set<string>();
  for (const n of g.nodes) {
    if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
    if (!UPGRADE_SAFE.has(n.opType) && !(n.opType === 'Slice' && g.opset >= 10)) bad.add(n.opType);
    if (n.opType === 'BatchNormalization' && n.attrs.spatial === 0) bad.add('BatchNormalization(spatial=0)');
  }
  if (g.opset < 7 || bad.size) {
    const what =
      g.opset < 7
        ? `it uses opset ${g.opset}, older than 7`
        : `it uses opset ${g.opset} with ${[...bad].sort().join(', ')}, which changed meaning by opset ${min}`;
    throw new QpError(
      'MODEL_UNSUPPORTED',
      `The model cannot be fake-quantized because ${what}. Export it again with opset ${min} or newer (e.g. torch.onnx.export(..., opset_version=13)).`,
    );
  }
  for (const n of g.nodes) {
    if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
    if (n.opType === 'Clip') {
      const lo = typeof n.attrs.min === 'number' ? n.attrs.min : -3.4028234663852886e38;
      const hi = typeof n.attrs.max === 'number' ? n.attrs.max : 3.4028234663852886e38;
      const loName = names.take(`${n.name}_min`);
      const hiName = names.take(`${n.name}_max`);
      g.initializers.set(loName, makeTensor(loName, [], [lo]));
      g.initializers.set(hiName, makeTensor(hiName, [], [hi]));
      n.inputs = [n.inputs[0], loName, hiName];
      delete n.attrs.min;
      delete n.attrs.max;
    } else if (n.opType === 'Pad' && Array.isArray(n.attrs.pads)) {
      const pName = names.take(`${n.name}_pads`);
      g.initializers.set(
        pName,
        makeTensor(pName, [n.attrs.pads.length], (n.attrs.pads as number[]).map(BigInt), 'int64'),
      );
      const inputs = [n.inputs[0], pName];
      if (typeof n.attrs.value === 'number' && n.attrs.value !== 0) {
        const vName = names.take(`${n.name}_value`);
        g.initializers.set(vName, makeTensor(vName, [], [n.attrs.value]));
        inputs.push(vName);
      }
      n.inputs = inputs;
      delete n.attrs.pads;
      delete n.attrs.value;
    } else if (n.opType === 'BatchNormalization' && 'spatial' in n.attrs) {
      delete n.attrs.spatial;
    }
  }
  g.opset = min;
}

function checkQParams(t: string, qp: QParams): void {
  const C = qp.scale.length;
  if (C === 0 || qp.zeroPoint.length !== C) {
    throw new QpError(
      'INTERNAL',
      `Quantization parameters of "${t}" have ${C} scales and ${qp.zeroPoint.length} zero points.`,
    );
  }
  for (let c = 0; c < C; c++) {
    if (!(qp.scale[c] > 0) || !Number.isFinite(qp.scale[c])) {
      throw new QpError(
        'INTERNAL',
        `Quantization scale ${qp.scale[c]} of "${t}" (channel ${c}) is not a positive finite number.`,
      );
    }
  }
  if (C > 1 && qp.axis < 0) throw new QpError('INTERNAL', `"${t}" has ${C} scales but no channel axis.`);
}

/**
 * A new graph with weights replaced and activations fake-quantized (see module header).
 * Every node reading an activation tensor t is rewired to read its fake-quantized copy
 * `<t>_fq`. Graph outputs are NOT rewired: an output that is itself a quantized tensor
 * keeps delivering the float value (fetch `<t>_fq` via addOutputs to see the quantized
 * one). Per-tensor parameters use Clip with scalar bounds; per-channel ones use Max/Min
 * with bounds shaped to broadcast on `axis` (needs the rank from value_info, or axis 1:
 * then the tensor is viewed as [N, C, -1] and reshaped back).
 * Raises the opset to 11 if lower (see ensureOpset). Throws QpError INTERNAL on a
 * missing tensor or mismatched weight length, MODEL_UNSUPPORTED from ensureOpset.
 */
export function insertFakeQuant(g: Graph, q: FakeQuantSpec): Graph {
  const out = cloneGraph(g, { shareInitializers: true });
  if (q.activations.size) ensureOpset(out, 11);
  const names = new NameAllocator(out);

  for (const [name, values] of q.weights) {
    const w = out.initializers.get(name);
    if (!w) throw new QpError('INTERNAL', `Cannot replace weights "${name}": no such initializer.`);
    if (w.dtype !== 'float32' || w.data.length !== values.length) {
      throw new QpError(
        'INTERNAL',
        `Quantized weights for "${name}" have ${values.length} values; the ${w.dtype} initializer has ${w.data.length}.`,
      );
    }
    out.initializers.set(name, { name, dtype: 'float32', dims: [...w.dims], data: values });
  }

  const known = new Set<string>([...out.inputs.map((v) => v.name), ...out.nodes.flatMap((n) => n.outputs)]);
  const boundCache = new Map<number, string>();
  const scalar = (v: number, base: string): string => {
    const key = Math.fround(v);
    let n = boundCache.get(key);
    if (!n) {
      n = names.take(base);
      out.initializers.set(n, makeTensor(n, [], [v]));
      boundCache.set(key, n);
    }
    return n;
  };

  const inserted: Node[][] = [];
  const rewire = new Map<string, string>();
  for (const [t, qp] of q.activations) {
    if (!known.has(t))
      throw new QpError('INTERNAL', `Cannot fake-quantize "${t}": no node or graph input produces it.`);
    checkQParams(t, qp);
    const chain: Node[] = [];
    const C = qp.scale.length;
    const fq = names.take(`${t}_fq`);
    if (C === 1) {
      const s = names.take(`${t}_scale`);
      out.initializers.set(s, makeTensor(s, [], Float32Array.of(qp.scale[0])));
      const lo = scalar(qp.qmin - qp.zeroPoint[0], `fq_lo_${qp.qmin - qp.zeroPoint[0]}`);
      const hi = scalar(qp.qmax - qp.zeroPoint[0], `fq_hi_${qp.qmax - qp.zeroPoint[0]}`);
      const d = names.take(`${t}_fq_div`);
      const r = names.take(`${t}_fq_round`);
      const c = names.take(`${t}_fq_clip`);
      chain.push(
        makeNode('Div', [t, s], [d], {}, { name: names.take(`${t}_fq/Div`) }),
        makeNode('Round', [d], [r], {}, { name: names.take(`${t}_fq/Round`) }),
        makeNode('Clip', [r, lo, hi], [c], {}, { name: names.take(`${t}_fq/Clip`) }),
        makeNode('Mul', [c, s], [fq], {}, { name: names.take(`${t}_fq/Mul`) }),
      );
    } else {
      const shape = shapeOf(out, t);
      let x = t;
      let rank: number;
      let reshapeBack = false;
      if (shape) rank = shape.length;
      else if (qp.axis === 1) {
        // unknown rank: view as [N, C, rest] so [C, 1] bounds broadcast on axis 1
        const sh = names.take(`${t}_fq_view_shape`);
        out.initializers.set(sh, makeTensor(sh, [3], [0n, 0n, -1n], 'int64'));
        x = names.take(`${t}_fq_view`);
        chain.push(makeNode('Reshape', [t, sh], [x], {}, { name: names.take(`${t}_fq/View`) }));
        rank = 3;
        reshapeBack = true;
      } else {
        throw new QpError(
          'INTERNAL',
          `Per-channel quantization of "${t}" on axis ${qp.axis} needs its rank, which the model does not record.`,
        );
      }
      const pdims = [C, ...new Array(rank - 1 - qp.axis).fill(1)];
      const s = names.take(`${t}_scale`);
      const lo = names.take(`${t}_fq_lo`);
      const hi = names.take(`${t}_fq_hi`);
      out.initializers.set(s, makeTensor(s, pdims, Float32Array.from(qp.scale)));
      out.initializers.set(
        lo,
        makeTensor(
          lo,
          pdims,
          Float32Array.from(qp.zeroPoint, (z) => qp.qmin - z),
        ),
      );
      out.initializers.set(
        hi,
        makeTensor(
          hi,
          pdims,
          Float32Array.from(qp.zeroPoint, (z) => qp.qmax - z),
        ),
      );
      const d = names.take(`${t}_fq_div`);
      const r = names.take(`${t}_fq_round`);
      const mx = names.take(`${t}_fq_max`);
      const mn = names.take(`${t}_fq_min`);
      const y = reshapeBack ? names.take(`${t}_fq_flat`) : fq;
      chain.push(
        makeNode('Div', [x, s], [d], {}, { name: names.take(`${t}_fq/Div`) }),
        makeNode('Round', [d], [r], {}, { name: names.take(`${t}_fq/Round`) }),
        makeNode('Max', [r, lo], [mx], {}, { name: names.take(`${t}_fq/Max`) }),
        makeNode('Min', [mx, hi], [mn], {}, { name: names.take(`${t}_fq/Min`) }),
        makeNode('Mul', [mn, s], [y], {}, { name: names.take(`${t}_fq/Mul`) }),
      );
      if (reshapeBack) {
        const shp = names.take(`${t}_fq_shape`);
        chain.push(
          makeNode('Shape', [t], [shp], {}, { name: names.take(`${t}_fq/Shape`) }),
          makeNode('Reshape', [y, shp], [fq], {}, { name: names.take(`${t}_fq/Unview`) }),
        );
      }
    }
    inserted.push(chain);
    rewire.set(t, fq);
  }

  // Rewire original consumers, then place each chain right after its tensor's producer.
  for (const n of out.nodes) n.inputs = n.inputs.map((i) => rewire.get(i) ?? i);
  const after = new Map<string, Node[]>();
  for (const chain of inserted) {
    const src = chain[0].inputs[0]; // the quantized tensor t
    const list = after.get(src) ?? [];
    list.push(...chain);
    after.set(src, list);
  }
  const nodes: Node[] = [];
  const emit = (t: string) => {
    const l = after.get(t);
    if (l) {
      nodes.push(...l);
      after.delete(t);
    }
  };
  for (const v of out.inputs) emit(v.name);
  for (const n of out.nodes) {
    nodes.push(n);
    for (const o of n.outputs) emit(o);
  }
  out.nodes = nodes;
  return out;
}

/**
 * A new graph that also outputs the given tensors (float32, shape from value_info when
 * known). Tensors already among the outputs are skipped. Throws QpError INTERNAL for a
 * tensor nothing produces.
 */
export function addOutputs(g: Graph, tensors: string[]): Graph {
  const out = cloneGraph(g, { shareInitializers: true });
  const have = new Set(out.outputs.map((o) => o.name));
  const known = new Set<string>([
    ...out.inputs.map((v) => v.name),
    ...out.nodes.flatMap((n) => n.outputs),
    ...out.initializers.keys(),
  ]);
  for (const t of tensors) {
    if (have.has(t)) continue;
    if (!known.has(t))
      throw new QpError('INTERNAL', `Cannot output tensor "${t}": no node, input or initializer provides it.`);
    out.outputs.push({ name: t, dtype: 'float32', shape: shapeOf(out, t) });
    have.add(t);
  }
  return out;
}
