/**
 * Reading a quantized ONNX model made by another tool (or by our own export): what was
 * quantized, how, and the float network underneath.
 *
 * Two forms are read, as onnxruntime's quantizer writes them:
 * - QDQ: QuantizeLinear → DequantizeLinear pairs on activations; weights stored as
 *   integers followed by DequantizeLinear, or as float followed by a Q/DQ pair; int32
 *   biases behind DequantizeLinear; per-tensor or per-axis; int4/uint4/int8/uint8/int16/
 *   uint16 (a Clip right before a QuantizeLinear whose bounds fall on integer codes, as our
 *   export writes for narrow ranges, is read as part of that quantizer);
 * - QOperator: QLinearConv, QLinearMatMul, QGemm, QLinearAdd, QLinearMul,
 *   QLinearGlobalAveragePool, QLinearAveragePool, QLinearConcat, QLinearSigmoid,
 *   QLinearLeakyRelu, QLinearSoftmax (default and `com.microsoft` domains) with
 *   QuantizeLinear / DequantizeLinear at the edges; integer tensors may pass through
 *   MaxPool, Reshape, Flatten and other data-movement ops, which keep their grid.
 * Both become the same description: a float "skeleton" graph (every quantized op replaced
 * by its float op, weights and biases dequantized, Q/DQ pairs removed) plus the quantizers
 * that sit on its tensors and the integer grids of its weights. The matcher
 * (imported/match.ts) and the re-simulation (imported/resimulate.ts) only see that.
 *
 * What is not understood (dynamic quantization, blocked quantization, float16 scales,
 * channels-last pooling, other com.microsoft ops) is listed in `unsupported` with the
 * reason; such a model still evaluates as it is, but cannot be matched or re-simulated.
 *
 * Pure graph reading: never edits the graph it is given, never runs anything.
 */
import { QpError } from '../util/errors.ts';
import {
  type Graph,
  type Node,
  type TensorData,
  cloneNode,
  consumersOf,
  makeNode,
  makeTensor,
  producerOf,
  pruneInitializers,
  scalarOperand,
  shapeOf,
} from '../onnx/ir.ts';
import { layerNames } from '../onnx/layer-names.ts';
import { dequantize, quantizeToInt } from '../quant/quantizer.ts';
import type { QParams } from '../quant/types.ts';
import {
  type IntType,
  type ReadQuantizer,
  INT_BITS,
  floatValues,
  intTypeOf,
  intTypeOfOnnx,
  intValues,
  isSigned,
  readQuantizer,
  sameQParams,
  storageRange,
} from './ints.ts';
import type { ActivationInfo, ImportedFormat, ImportedLayerInfo, QuantDescription } from '../protocol/imported.ts';

export type { ActivationInfo, ImportedFormat, ImportedLayerInfo, QuantDescription };

/** A weight's grid and codes, in the skeleton's layout. */
export interface ImportedWeight {
  /** skeleton node reading it */
  node: string;
  /** skeleton initializer (float, the dequantized values) */
  initializer: string;
  dims: number[];
  /** integer codes, zero point included */
  codes: Int32Array;
  qparams: QParams;
  storage: IntType;
  storedAs: 'integer' | 'float';
}

export interface ImportedActivation {
  tensor: string;
  qparams: QParams;
  storage: IntType;
  origin: string;
  /** the file's integer tensor holding the quantized values (what a DequantizeLinear tap reads) */
  intTensor?: string;
}

export interface ImportedModel {
  format: ImportedFormat;
  /** the float network underneath (runnable when `unsupported` is empty) */
  skeleton: Graph;
  weights: ImportedWeight[];
  activations: ImportedActivation[];
  layers: ImportedLayerInfo[];
  /** weighted layers of the skeleton whose weights were not quantized */
  floatLayers: string[];
  /** ops the reader does not understand, with the reason */
  unsupported: { node: string; opType: string; reason: string }[];
  /** things worth knowing that do not stop the reading (e.g. a tensor quantized twice) */
  notes: string[];
}

const DYNAMIC = new Set([
  'DynamicQuantizeLinear',
  'ConvInteger',
  'MatMulInteger',
  'MatMulIntegerToFloat',
  'DynamicQuantizeMatMul',
  'DynamicQuantizeLSTM',
  'QAttention',
]);

/** QLinear unary ops: [X, X_scale, X_zp, Y_scale, Y_zp] → float op. */
const QLINEAR_UNARY: Readonly<Record<string, string>> = {
  QLinearGlobalAveragePool: 'GlobalAveragePool',
  QLinearAveragePool: 'AveragePool',
  QLinearSigmoid: 'Sigmoid',
  QLinearLeakyRelu: 'LeakyRelu',
  QLinearSoftmax: 'Softmax',
};
const QLINEAR_BINARY: Readonly<Record<string, string>> = { QLinearAdd: 'Add', QLinearMul: 'Mul' };

const isQuantOp = (n: Node) =>
  n.opType.startsWith('QLinear') ||
  n.opType === 'QGemm' ||
  n.opType === 'QuantizeLinear' ||
  n.opType === 'DequantizeLinear';

/** Whether a parsed model contains any quantization (Q/DQ, QLinear ops, dynamic quantization). */
export function isQuantizedGraph(g: Graph): boolean {
  return g.nodes.some((n) => isQuantOp(n) || DYNAMIC.has(n.opType));
}

/** A quantizer in words (see QuantDescription). */
export function describeQuantizer(q: ReadQuantizer): QuantDescription {
  const { qparams: qp, storage } = q;
  const bits = INT_BITS[storage];
  const signed = isSigned(storage);
  const full = storageRange(storage);
  const zps = Array.from(qp.zeroPoint);
  const mid = signed ? 0 : 2 ** (bits - 1);
  let lo = Infinity;
  let hi = -Infinity;
  for (let c = 0; c < qp.scale.length; c++) {
    lo = Math.min(lo, Math.fround((qp.qmin - qp.zeroPoint[c]) * qp.scale[c]));
    hi = Math.max(hi, Math.fround((qp.qmax - qp.zeroPoint[c]) * qp.scale[c]));
  }
  return {
    storage,
    bits,
    signed,
    symmetric: zps.every((z) => z === 0) || zps.every((z) => z === mid),
    narrow: qp.qmin !== full.qmin || qp.qmax !== full.qmax,
    qmin: qp.qmin,
    qmax: qp.qmax,
    granularity: qp.axis >= 0 ? 'per-channel' : 'per-tensor',
    axis: qp.axis >= 0 ? qp.axis : null,
    channels: qp.scale.length,
    scale: { min: Math.min(...qp.scale), max: Math.max(...qp.scale) },
    zeroPoint: { min: Math.min(...zps), max: Math.max(...zps) },
    range: { min: lo, max: hi },
  };
}

/** Ops an integer tensor may pass through unchanged in grid (data movement and max pooling). */
const INT_PASS = new Set([
  'MaxPool',
  'Reshape',
  'Flatten',
  'Transpose',
  'Squeeze',
  'Unsqueeze',
  'Identity',
  'Slice',
  'Split',
  'Pad',
  'Resize',
  'Gather',
  'Concat',
  'DepthToSpace',
  'SpaceToDepth',
  'GlobalMaxPool',
  'Tile',
  'Expand',
  'Dropout',
]);

/**
 * Reads a parsed quantized model (see module header). Never throws for an op it does not
 * understand (it lands in `unsupported`); throws QpError MODEL_UNSUPPORTED only for
 * quantization parameters that make no sense (non-positive scales, mismatched sizes).
 */
export function readImported(g: Graph): ImportedModel {
  const unsupported: ImportedModel['unsupported'] = [];
  const notes: string[] = [];
  const consts = new Map<string, TensorData>(g.initializers);
  for (const n of g.nodes) {
    const v = n.attrs.value;
    if (n.opType === 'Constant' && v && typeof v === 'object' && 'data' in v) consts.set(n.outputs[0], v);
  }
  const origProducers = producerOf(g);
  const origConsumers = consumersOf(g);

  const alias = new Map<string, string>();
  const R = (t: string) => (t ? (alias.get(t) ?? t) : t);
  /** integer activation tensors of the file → their grid */
  const intParams = new Map<string, ReadQuantizer>();
  /** float constants quantized by a QuantizeLinear: its output → codes */
  const quantConsts = new Map<string, { codes: Int32Array; q: ReadQuantizer; dims: number[] }>();
  /** skeleton initializers that are dequantized integers */
  const deq = new Map<string, { codes: Int32Array; q: ReadQuantizer; dims: number[]; storedAs: 'integer' | 'float' }>();
  const quantizers = new Map<string, ImportedActivation>();
  const skInits = new Map<string, TensorData>();
  const nodes: Node[] = [];
  const dropped = new Set<Node>();
  let sawQLinear = false;
  let sawQdq = false;

  const skip = (n: Node, reason: string) => unsupported.push({ node: n.name, opType: n.opType, reason });
  const konst = (t: string | undefined) => (t ? consts.get(t) : undefined);
  const rankOf = (t: string) => konst(t)?.dims.length ?? shapeOf(g, t)?.length;

  const addQuantizer = (tensor: string, q: ReadQuantizer, origin: string, intTensor?: string) => {
    const have = quantizers.get(tensor);
    if (have && !sameQParams(have.qparams, q.qparams)) {
      notes.push(
        `Tensor "${tensor}" is quantized twice with different parameters (by ${have.origin} and ${origin}); the first is used.`,
      );
      return;
    }
    if (!have) quantizers.set(tensor, { tensor, qparams: q.qparams, storage: q.storage, origin, intTensor });
  };

  /** A dequantized constant as a skeleton initializer; returns its name. */
  const dequantConst = (
    name: string,
    codes: Int32Array,
    q: ReadQuantizer,
    dims: number[],
    storedAs: 'integer' | 'float',
  ): string => {
    skInits.set(name, makeTensor(name, dims, dequantize(codes, dims, q.qparams)));
    deq.set(name, { codes, q, dims, storedAs });
    return name;
  };

  /** An integer constant input of a QLinear op (weights, a constant operand), dequantized. */
  const intConst = (n: Node, t: string, scale: string, zp: string | undefined, axis: number | undefined) => {
    const c = konst(t);
    const s = konst(scale);
    if (!c || !s) return undefined;
    const type = intTypeOf(c);
    if (!type) return undefined;
    const q = readQuantizer(`input "${t}" of ${n.name}`, s, konst(zp), axis, c.dims.length, type);
    return dequantConst(t, intValues(c), q, [...c.dims], 'integer');
  };

  /** Quantizer of a QLinear op's activation input/output from its scale and zero point. */
  const actQuant = (n: Node, what: string, scale: string, zp: string | undefined): ReadQuantizer | undefined => {
    const s = konst(scale);
    if (!s) {
      skip(n, `the ${what} scale "${scale}" is not a constant, so the ranges cannot be read`);
      return undefined;
    }
    return readQuantizer(`the ${what} of ${n.name}`, s, konst(zp), undefined, undefined, 'uint8');
  };

  const emit = (n: Node) => nodes.push(n);

  /** A QLinearConv / QGemm int32 bias as a float skeleton initializer at s_x·s_w (false: not read). */
  const int32Bias = (n: Node, b: string, qx: ReadQuantizer, wname: string): boolean => {
    const bc = konst(b);
    if (!bc || bc.dtype !== 'int32') {
      skip(n, `its bias "${b}" is not an int32 constant`);
      return false;
    }
    const ws = deq.get(wname)!.q.qparams.scale;
    const sx = qx.qparams.scale[0];
    const bias = Float32Array.from(intValues(bc), (v, c) => v * Math.fround(sx * ws[ws.length > 1 ? c : 0]));
    skInits.set(b, makeTensor(b, [...bc.dims], bias));
    return true;
  };

  for (const n of g.nodes) {
    const op = n.opType;
    const domainOk = n.domain === '' || n.domain === 'ai.onnx' || n.domain === 'com.microsoft';
    if (DYNAMIC.has(op)) {
      skip(
        n,
        'dynamic quantization computes its activation scales at run time, so there are no fixed ranges to read; quantize the model statically (calibrated) instead',
      );
      continue;
    }
    if (!domainOk) {
      emit(cloneNode(n));
      continue;
    }
    if (op === 'QuantizeLinear' || op === 'DequantizeLinear') {
      sawQdq = true;
      if (n.attrs.block_size !== undefined && n.attrs.block_size !== 0) {
        skip(n, 'blocked quantization (block_size) is not read; use per-tensor or per-channel quantization');
        continue;
      }
      const [x, scale, zp] = n.inputs;
      const out = n.outputs[0];
      const s = konst(scale);
      if (!s) {
        skip(n, `its scale "${scale}" is not a constant, so the range cannot be read`);
        continue;
      }
      const xc = konst(x);
      if (op === 'QuantizeLinear') {
        const outType =
          (zp && konst(zp) && intTypeOf(konst(zp)!)) ||
          (typeof n.attrs.output_dtype === 'number' ? intTypeOfOnnx(n.attrs.output_dtype) : undefined) ||
          'uint8';
        const axis = typeof n.attrs.axis === 'number' ? n.attrs.axis : undefined;
        const q = readQuantizer(`QuantizeLinear ${n.name}`, s, konst(zp), axis, rankOf(x), outType);
        if (xc && floatValues(xc)) {
          quantConsts.set(out, { codes: quantizeToInt(floatValues(xc)!, xc.dims, q.qparams), q, dims: [...xc.dims] });
          continue;
        }
        let tensor = R(x);
        // a Clip right before, whose bounds fall on codes: part of this quantizer (narrow range)
        const clip = origProducers.get(x);
        if (clip?.opType === 'Clip' && q.qparams.scale.length === 1 && (origConsumers.get(x) ?? []).length === 1) {
          const lo = scalarOperand(g, clip, 1, 'min');
          const hi = scalarOperand(g, clip, 2, 'max');
          const code = (v: number | undefined) => {
            if (v === undefined) return undefined;
            const k = v / q.qparams.scale[0] + q.qparams.zeroPoint[0];
            return Math.abs(k - Math.round(k)) < 1e-3 ? Math.round(k) : undefined;
          };
          const kl = code(lo);
          const kh = code(hi);
          if (kl !== undefined && kh !== undefined && kl >= q.qparams.qmin && kh <= q.qparams.qmax && kl < kh) {
            q.qparams = { ...q.qparams, qmin: kl, qmax: kh };
            const sk = nodes.find((m) => m.outputs[0] === tensor && m.opType === 'Clip');
            if (sk) {
              dropped.add(sk);
              tensor = sk.inputs[0];
            }
          }
        }
        addQuantizer(tensor, q, n.name, out);
        alias.set(out, tensor);
        intParams.set(out, q);
        continue;
      }
      // DequantizeLinear
      const xType = xc ? intTypeOf(xc) : (intParams.get(x)?.storage ?? 'uint8');
      const axis = typeof n.attrs.axis === 'number' ? n.attrs.axis : undefined;
      if (xc && xType) {
        const q = readQuantizer(`DequantizeLinear ${n.name}`, s, konst(zp), axis, xc.dims.length, xType);
        dequantConst(out, intValues(xc), q, [...xc.dims], 'integer');
        continue;
      }
      const qc = quantConsts.get(x);
      if (qc) {
        const q = readQuantizer(`DequantizeLinear ${n.name}`, s, konst(zp), axis, qc.dims.length, qc.q.storage);
        if (!sameQParams(q.qparams, qc.q.qparams))
          notes.push(`${n.name} dequantizes constant "${x}" with other parameters than it was quantized with.`);
        dequantConst(out, qc.codes, qc.q, qc.dims, 'float');
        continue;
      }
      if (g.inputs.some((v) => v.name === x)) {
        skip(n, `the model input "${x}" is already an integer tensor; give the model a float32 image input`);
        continue;
      }
      const q = readQuantizer(`DequantizeLinear ${n.name}`, s, konst(zp), axis, rankOf(x), xType ?? 'uint8');
      const known = intParams.get(x);
      if (known && !sameQParams(known.qparams, q.qparams) && known.qparams.qmin === q.qparams.qmin) {
        notes.push(`${n.name} dequantizes "${x}" with other parameters than the tensor was quantized with.`);
      }
      if (!known) addQuantizer(R(x), q, n.name, x);
      alias.set(out, R(x));
      continue;
    }

    if (op === 'QLinearConv') {
      sawQLinear = true;
      const [x, xs, xzp, w, ws, wzp, ys, yzp, b] = n.inputs;
      const wname = intConst(n, w, ws, wzp, 0);
      const qx = actQuant(n, 'input', xs, xzp);
      const qy = actQuant(n, 'output', ys, yzp);
      if (!wname || !qx || !qy) {
        if (!wname) skip(n, `its weights "${w}" are not an integer constant`);
        continue;
      }
      const inputs = [R(x), wname];
      if (b) {
        if (!int32Bias(n, b, qx, wname)) continue;
        inputs.push(b);
      }
      addQuantizer(R(x), qx, n.name, x);
      const y = n.outputs[0];
      addQuantizer(y, qy, n.name, y);
      intParams.set(y, qy);
      emit(floatNode(n, 'Conv', inputs, [y], ['strides', 'pads', 'dilations', 'group', 'kernel_shape', 'auto_pad']));
      continue;
    }
    if (op === 'QLinearMatMul') {
      sawQLinear = true;
      const [a, as, azp, b, bs, bzp, ys, yzp] = n.inputs;
      const bRank = rankOf(b) ?? 2;
      const aConst = konst(a) && intTypeOf(konst(a)!) ? intConst(n, a, as, azp, (rankOf(a) ?? 2) - 2) : undefined;
      const bConst = konst(b) && intTypeOf(konst(b)!) ? intConst(n, b, bs, bzp, bRank - 1) : undefined;
      const qa = aConst ? undefined : actQuant(n, 'input A', as, azp);
      const qb = bConst ? undefined : actQuant(n, 'input B', bs, bzp);
      const qy = actQuant(n, 'output', ys, yzp);
      if (!qy) continue;
      if (qa) addQuantizer(R(a), qa, n.name, a);
      if (qb) addQuantizer(R(b), qb, n.name, b);
      const y = n.outputs[0];
      addQuantizer(y, qy, n.name, y);
      intParams.set(y, qy);
      emit(floatNode(n, 'MatMul', [aConst ?? R(a), bConst ?? R(b)], [y], []));
      continue;
    }
    if (op === 'QGemm') {
      sawQLinear = true;
      const [a, as, azp, b, bs, bzp, c, ys, yzp] = n.inputs;
      const transB = n.attrs.transB === 1;
      const alpha = typeof n.attrs.alpha === 'number' ? n.attrs.alpha : 1;
      if (alpha !== 1) {
        skip(n, `its alpha is ${alpha}; only alpha = 1 is read`);
        continue;
      }
      const bname = intConst(n, b, bs, bzp, transB ? 0 : 1);
      const qa = actQuant(n, 'input', as, azp);
      if (!bname || !qa) {
        if (!bname) skip(n, `its weights "${b}" are not an integer constant`);
        continue;
      }
      const inputs = [R(a), bname];
      if (c) {
        if (!int32Bias(n, c, qa, bname)) continue;
        inputs.push(c);
      }
      addQuantizer(R(a), qa, n.name, a);
      const y = n.outputs[0];
      if (ys) {
        const qy = actQuant(n, 'output', ys, yzp);
        if (!qy) continue;
        addQuantizer(y, qy, n.name, y);
        intParams.set(y, qy);
      }
      emit(floatNode(n, 'Gemm', inputs, [y], ['transA', 'transB']));
      continue;
    }
    if (QLINEAR_BINARY[op]) {
      sawQLinear = true;
      const [a, as, azp, b, bs, bzp, cs, czp] = n.inputs;
      const operand = (t: string, s: string, z: string) => {
        const c = konst(t);
        if (c && intTypeOf(c)) return { name: intConst(n, t, s, z, undefined), q: undefined, int: undefined };
        return { name: R(t), q: actQuant(n, 'input', s, z), int: t };
      };
      const A = operand(a, as, azp);
      const B = operand(b, bs, bzp);
      const qy = actQuant(n, 'output', cs, czp);
      if (!A.name || !B.name || !qy) continue;
      if (A.q) addQuantizer(A.name, A.q, n.name, A.int);
      if (B.q) addQuantizer(B.name, B.q, n.name, B.int);
      const y = n.outputs[0];
      addQuantizer(y, qy, n.name, y);
      intParams.set(y, qy);
      emit(floatNode(n, QLINEAR_BINARY[op], [A.name, B.name], [y], []));
      continue;
    }
    if (QLINEAR_UNARY[op]) {
      sawQLinear = true;
      if (n.attrs.channels_last === 1) {
        skip(n, 'it works on channels-last (NHWC) tensors, which the float skeleton cannot express');
        continue;
      }
      const [x, xs, xzp, ys, yzp] = n.inputs;
      const qx = actQuant(n, 'input', xs, xzp);
      const qy = actQuant(n, 'output', ys, yzp);
      if (!qx || !qy) continue;
      addQuantizer(R(x), qx, n.name, x);
      const y = n.outputs[0];
      addQuantizer(y, qy, n.name, y);
      intParams.set(y, qy);
      const keep = Object.keys(n.attrs).filter((k) => k !== 'channels_last' && k !== 'opset');
      emit(floatNode(n, QLINEAR_UNARY[op], [R(x)], [y], keep));
      continue;
    }
    if (op === 'QLinearConcat') {
      sawQLinear = true;
      const [ys, yzp, ...rest] = n.inputs;
      const qy = actQuant(n, 'output', ys, yzp);
      if (!qy) continue;
      const inputs: string[] = [];
      for (let k = 0; k + 3 <= rest.length; k += 3) {
        const [t, s, z] = rest.slice(k, k + 3);
        const c = konst(t);
        if (c && intTypeOf(c)) {
          const nm = intConst(n, t, s, z, undefined);
          if (nm) inputs.push(nm);
          continue;
        }
        const q = actQuant(n, `input ${k / 3}`, s, z);
        if (q) addQuantizer(R(t), q, n.name, t);
        inputs.push(R(t));
      }
      const y = n.outputs[0];
      addQuantizer(y, qy, n.name, y);
      intParams.set(y, qy);
      emit(floatNode(n, 'Concat', inputs, [y], ['axis']));
      continue;
    }
    if (n.domain === 'com.microsoft' || op.startsWith('QLinear')) {
      skip(n, 'this quantized operator is not read (see docs/imported-models.md for the list of read operators)');
      continue;
    }
    // any other op: float, or an integer tensor passing through (keeps its grid)
    const m = cloneNode(n);
    m.inputs = m.inputs.map(R);
    const intIn = n.inputs.find((t) => intParams.has(t));
    if (intIn) {
      if (!INT_PASS.has(op)) {
        skip(n, `it computes on the integer tensor "${intIn}" directly, which is only read for data-movement ops`);
        continue;
      }
      for (const o of n.outputs) if (o) intParams.set(o, intParams.get(intIn)!);
    }
    emit(m);
  }

  // skeleton graph
  const skeletonNodes = nodes.filter((m) => !dropped.has(m));
  const outputs = g.outputs.map((o) => ({ ...o, dtype: 'float32' as const, shape: o.shape ? [...o.shape] : null }));
  for (const o of g.outputs) {
    const t = R(o.name);
    if (t !== o.name) skeletonNodes.push(makeNode('Identity', [t], [o.name], {}, { name: `${o.name}_output` }));
  }
  const initializers = new Map<string, TensorData>();
  for (const [k, t] of g.initializers) if (!intTypeOf(t) || t.dtype === 'int32') initializers.set(k, t);
  for (const [k, t] of skInits) initializers.set(k, t);
  const valueInfo = new Map([...g.valueInfo].filter(([k, v]) => v.dtype === 'float32' && !intParams.has(k)));
  const skeleton: Graph = {
    opset: g.opset,
    inputs: g.inputs.map((v) => ({ ...v, shape: v.shape ? [...v.shape] : null })),
    outputs,
    nodes: skeletonNodes,
    initializers,
    valueInfo,
    meta: {
      ...g.meta,
      opsetImports: g.meta.opsetImports.filter((o) => o.domain !== 'com.microsoft').map((o) => ({ ...o })),
      metadataProps: [],
    },
  };
  // drop Constant nodes nothing reads any more (integer weights held in Constant nodes)
  const read = new Set(skeleton.nodes.flatMap((m) => m.inputs));
  for (const o of skeleton.outputs) read.add(o.name);
  skeleton.nodes = skeleton.nodes.filter((m) => m.opType !== 'Constant' || m.outputs.some((o) => read.has(o)));
  pruneInitializers(skeleton);

  // weights and layers
  const weights: ImportedWeight[] = [];
  const floatLayers: string[] = [];
  const skConsumers = consumersOf(skeleton);
  for (const m of skeleton.nodes) {
    if (m.opType !== 'Conv' && m.opType !== 'Gemm' && m.opType !== 'MatMul') continue;
    const slot = m.opType === 'MatMul' && deq.has(m.inputs[0]) && !deq.has(m.inputs[1]) ? 0 : 1;
    const w = m.inputs[slot];
    const d = deq.get(w);
    if (!d) {
      if (skeleton.initializers.has(w)) floatLayers.push(m.name);
      continue;
    }
    weights.push({
      node: m.name,
      initializer: w,
      dims: d.dims,
      codes: d.codes,
      qparams: weightGrid(d.codes, d.q),
      storage: d.q.storage,
      storedAs: d.storedAs,
    });
  }
  const activations = [...quantizers.values()];
  const names = layerNames(skeleton);
  const byTensor = new Map(activations.map((a) => [a.tensor, a] as const));
  const origByName = new Map(g.nodes.map((m) => [m.name, m] as const));
  const info = (a: ImportedActivation | undefined): ActivationInfo | null =>
    a ? { ...describeQuantizer(a), tensor: a.tensor, origin: a.origin } : null;
  const layers: ImportedLayerInfo[] = weights.map((w) => {
    const m = skeleton.nodes.find((x) => x.name === w.node)!;
    const orig = origByName.get(m.name);
    const dataIn = m.inputs.find((t, k) => k !== m.inputs.indexOf(w.initializer) && t && !skeleton.initializers.has(t));
    const bias = m.inputs[2];
    const biasDeq = bias ? deq.get(bias) : undefined;
    const biasKind: ImportedLayerInfo['bias'] = !bias
      ? followBiasAdd(skeleton, skConsumers, m)
        ? 'float'
        : 'none'
      : biasDeq?.q.storage === 'int32' || orig?.opType === 'QLinearConv' || orig?.opType === 'QGemm'
        ? 'int32'
        : 'float';
    return {
      node: w.node,
      opType: orig?.opType ?? m.opType,
      label: names.get(m.name)?.label ?? m.name,
      weight: {
        ...describeQuantizer({ qparams: w.qparams, storage: w.storage }),
        tensor: w.initializer,
        dims: w.dims,
        storedAs: w.storedAs,
      },
      input: info(dataIn ? byTensor.get(dataIn) : undefined),
      output: info(firstQuantizerAfter(skeleton, skConsumers, m.outputs[0], byTensor)),
      bias: biasKind,
    };
  });
  const format: ImportedFormat = sawQLinear ? 'qoperator' : sawQdq ? 'qdq' : 'float';
  return { format, skeleton, weights, activations, layers, floatLayers, unsupported, notes };
}

/** A float op from a QLinear one: the given inputs/outputs and the listed attributes. */
function floatNode(n: Node, opType: string, inputs: string[], outputs: string[], keep: string[]): Node {
  const attrs: Node['attrs'] = {};
  const attrTypes: NonNullable<Node['attrTypes']> = {};
  for (const k of keep) {
    if (n.attrs[k] === undefined) continue;
    attrs[k] = n.attrs[k];
    if (n.attrTypes?.[k]) attrTypes[k] = n.attrTypes[k];
  }
  return makeNode(opType, inputs, outputs, attrs, { name: n.name, attrTypes });
}

/**
 * The grid of an integer weight: its storage range, narrowed to [−(2^(b−1)−1), 2^(b−1)−1]
 * when it is signed, symmetric and no code uses the most negative value (onnxruntime's
 * symmetric weights: scale = max|w| / 127), which is then the range its scales were made for.
 */
function weightGrid(codes: Int32Array, q: ReadQuantizer): QParams {
  const qp = q.qparams;
  if (!isSigned(q.storage) || !qp.zeroPoint.every((z) => z === 0) || qp.qmin !== storageRange(q.storage).qmin)
    return qp;
  let min = Infinity;
  for (let i = 0; i < codes.length; i++) if (codes[i] < min) min = codes[i];
  return min > qp.qmin ? { ...qp, qmin: qp.qmin + 1 } : qp;
}

const FOLLOW = new Set(['Relu', 'Clip', 'LeakyRelu', 'Identity', 'Flatten', 'Reshape', 'Squeeze', 'Dropout', 'Add']);

/** The first quantizer on the path from `t` through single-consumer activations and bias adds. */
function firstQuantizerAfter(
  g: Graph,
  consumers: Map<string, Node[]>,
  t: string,
  byTensor: Map<string, ImportedActivation>,
): ImportedActivation | undefined {
  for (let k = 0; k < 8; k++) {
    const a = byTensor.get(t);
    if (a) return a;
    const cs = consumers.get(t) ?? [];
    if (cs.length !== 1 || !FOLLOW.has(cs[0].opType)) return undefined;
    const c = cs[0];
    if (c.opType === 'Add' && !c.inputs.some((i) => g.initializers.has(i))) return undefined;
    t = c.outputs[0];
  }
  return undefined;
}

/** Whether a layer's bias is a separate float Add of a constant (our export's form). */
function followBiasAdd(g: Graph, consumers: Map<string, Node[]>, m: Node): boolean {
  const cs = consumers.get(m.outputs[0]) ?? [];
  return cs.length === 1 && cs[0].opType === 'Add' && cs[0].inputs.some((i) => g.initializers.has(i));
}

/** Throws QpError MODEL_UNSUPPORTED naming what the reader did not understand, if anything. */
export function requireUnderstood(m: ImportedModel, what: string): void {
  if (m.unsupported.length === 0) return;
  const list = m.unsupported
    .slice(0, 3)
    .map((u) => `${u.opType} "${u.node}": ${u.reason}`)
    .join('; ');
  throw new QpError(
    'MODEL_UNSUPPORTED',
    `The quantized model cannot be ${what}, because ${m.unsupported.length} node(s) are not understood: ${list}${m.unsupported.length > 3 ? '; …' : ''}. It can still be evaluated as it is.`,
  );
}
