/**
 * Which layers of a deployable run onnxruntime executes with integer kernels, and with
 * which numbers. onnxruntime's QDQ transforms (level ≥ extended: QDQSelectorActionTransformer)
 * replace a group DequantizeLinear → op → QuantizeLinear by one integer kernel when every
 * input of the op comes from a DequantizeLinear and its only output goes to a
 * QuantizeLinear; a Relu or Clip between the op and the QuantizeLinear is absorbed when the
 * QuantizeLinear's saturation range already lies inside it (qdq_util.cc IsClipMadeRedundantByQ).
 * Where MQBench's placement leaves an op's output unquantized (e.g. a projection Conv
 * feeding a float residual Add), the op runs in float on dequantized inputs.
 *
 * The plan also fixes the integers the kernels need and the simulation does not have:
 * - the int32 bias of each integer Conv/Gemm (kernels.ts quantizeBias); a channel whose
 *   bias would overflow int32 (a tiny weight scale, e.g. a depthwise channel with almost
 *   no weight) gets the smallest weight scale that makes it fit, and its weights are
 *   re-rounded on that grid, as onnxruntime's quantizer does;
 * - an output quantizer at a Conv's output when its activation point sits behind a Clip
 *   the quantizer does not cover (a signed int8 range after ReLU6): the same scale and
 *   zero point, which changes no value in exact arithmetic because the Clip's bounds are
 *   grid points or lie outside the grid;
 * - the same at a GlobalAveragePool's output when its quantized consumer sits behind a
 *   Flatten/Reshape.
 * Activation quantizers keep their scale and zero point, but the kernels saturate to the
 * whole 8-bit type: a narrow range (TensorRT's [−127, 127]) is not applied.
 *
 * Pure: reads the Deployable, builds nothing.
 */
import { QpError } from '../util/errors.ts';
import { type Graph, type Node, consumersOf, scalarOperand } from '../onnx/ir.ts';
import { quantizeToInt } from '../quant/quantizer.ts';
import type { QParams } from '../quant/types.ts';
import { type Deployable, type DeployWeight, rangeBits } from './deployable.ts';
import { INT32_MAX, biasScale, quantizeBias, typeRange } from './kernels.ts';

/**
 * One per-tensor 8-bit activation quantizer as the kernels see it, stored as uint8: a
 * signed quantizer (int8, zero point z) becomes uint8 with zero point z + 128, the same
 * grid and saturation. onnxruntime converts int8 activation pairs to uint8 itself on x86,
 * but only pairs whose QuantizeLinear feeds one DequantizeLinear; a tensor read by a
 * residual Add and a Conv would stay int8 beside converted neighbours, and mixed types
 * block the fusions.
 */
export interface ActQuant {
  tensor: string;
  scale: number;
  /** uint8 zero point */
  zeroPoint: number;
  /** the simulated integer range in uint8 codes (may be narrower than [0, 255]) */
  qmin: number;
  qmax: number;
}

/** Activations are stored as uint8 (see ActQuant). */
export const ACT_SIGNED = false;

export type IntegerKernel = 'QLinearConv' | 'QLinearMatMul' | 'QLinearAdd' | 'QLinearGlobalAveragePool';

/** A weight channel whose scale had to grow so its int32 bias fits. */
export interface RescaledChannel {
  channel: number;
  from: number;
  to: number;
}

export interface IntegerBias {
  /** int32 codes per output channel */
  codes: Int32Array;
  /** float32 s_x·s_w per output channel */
  scale: Float32Array;
  /** the float bias it stands for */
  float: Float32Array;
}

export interface IntegerLayer {
  node: string;
  opType: string;
  kernel: IntegerKernel | 'float';
  /** quantized inputs in the op's input order (activations only) */
  inputs: ActQuant[];
  /** the quantizer the kernel's output code is written in (absent for float outputs) */
  output?: ActQuant;
  /** the Relu/Clip node the output range absorbs */
  absorbed?: string;
  /** the output quantizer sits at the op's own output, added for deployment (see header) */
  insertedAt?: string;
  /** the weights as deployed (codes and scales; rescaled channels included) */
  weight?: DeployWeight;
  bias?: IntegerBias;
  rescaled?: RescaledChannel[];
  /** why the op runs in float (kernel 'float' only) */
  reason?: string;
}

export interface IntegerPlan {
  layers: IntegerLayer[];
  /** every 8-bit activation quantizer by tensor */
  activations: Map<string, ActQuant>;
}

function actQuant(tensor: string, qp: QParams): ActQuant | undefined {
  const { bits, signed } = rangeBits(qp);
  if (bits !== 8 || qp.scale.length !== 1) return undefined;
  const shift = signed ? 128 : 0;
  return {
    tensor,
    scale: qp.scale[0],
    zeroPoint: qp.zeroPoint[0] + shift,
    qmin: qp.qmin + shift,
    qmax: qp.qmax + shift,
  };
}

/** Whether a Relu/Clip in front of quantizer q changes nothing the quantizer keeps (onnxruntime's test). */
export function clipRedundant(g: Graph, act: Node, q: ActQuant): boolean {
  const { lo, hi } = typeRange(ACT_SIGNED);
  if (act.opType === 'Relu') return q.zeroPoint === lo;
  const min = scalarOperand(g, act, 1, 'min') ?? -Infinity;
  const max = scalarOperand(g, act, 2, 'max') ?? Infinity;
  // C's rint rounds half to even, like the kernels
  const qMin = Number.isFinite(min) ? Math.round(min / q.scale) + q.zeroPoint : -Infinity;
  const qMax = Number.isFinite(max) ? Math.round(max / q.scale) + q.zeroPoint : Infinity;
  return qMin <= lo && qMax >= hi;
}

/** Whether quantizing before a Relu/Clip with q's own grid gives the codes of quantizing after it. */
function clipCommutes(g: Graph, act: Node, q: ActQuant): boolean {
  const { lo, hi } = typeRange(ACT_SIGNED);
  const bounds =
    act.opType === 'Relu'
      ? [0]
      : [scalarOperand(g, act, 1, 'min'), scalarOperand(g, act, 2, 'max')].filter((b) => b !== undefined);
  return bounds.every((b) => {
    const v = b / q.scale + q.zeroPoint;
    return v <= lo || v >= hi || Math.abs(v - Math.round(v)) < 1e-4;
  });
}

/** The quantized weight of a layer, if it has one. */
function weightFor(d: Deployable, node: string): DeployWeight | undefined {
  return d.weights.find((w) => w.node === node);
}

/**
 * The int32 bias of an integer Conv/Gemm/MatMul, growing the weight scale of channels whose
 * bias would not fit (see header). Returns the (possibly re-rounded) weight as well.
 */
function integerBias(
  g: Graph,
  n: Node,
  w: DeployWeight,
  sx: number,
): { weight: DeployWeight; bias?: IntegerBias; rescaled: RescaledChannel[] } {
  // output channels: dims[0] of a Conv or a transposed Gemm weight, dims[1] of a [K, N] one
  const C = n.opType === 'Gemm' && n.attrs.transB !== 1 ? w.dims[1] : w.dims[0];
  const biasName = n.opType === 'MatMul' ? undefined : n.inputs[2];
  const init = biasName ? g.initializers.get(biasName) : undefined;
  if (!init) return { weight: w, rescaled: [] };
  if (init.dtype !== 'float32')
    throw new QpError('EXPORT_UNSUPPORTED', `The bias of layer "${n.name}" is ${init.dtype}, not float32.`);
  const beta = n.opType === 'Gemm' && typeof n.attrs.beta === 'number' ? n.attrs.beta : 1;
  const b = Float32Array.from(init.data as Float32Array, (v) => v * beta);
  const perChannel = w.qparams.axis >= 0;
  const scale = new Float32Array(b.length);
  const codes = new Int32Array(b.length);
  const rescaled: RescaledChannel[] = [];
  const wScale = new Float32Array(w.qparams.scale);
  for (let c = 0; c < b.length; c++) {
    const k = perChannel ? c : 0;
    let q = quantizeBias(b[c], sx, wScale[k]);
    if (Math.abs(q) > INT32_MAX) {
      if (!perChannel)
        throw new QpError(
          'EXPORT_UNSUPPORTED',
          `The bias of layer "${n.name}" does not fit an int32 at scale s_x·s_w (${biasScale(sx, wScale[0])}); per-channel weights would let that channel's scale grow.`,
        );
      // smallest float32 weight scale whose bias code fits (with a margin of 2 bits)
      let s = Math.fround(Math.abs(b[c]) / (sx * 2 ** 29));
      while (Math.abs(quantizeBias(b[c], sx, s)) > INT32_MAX / 2) s = Math.fround(s * 1.0001);
      rescaled.push({ channel: c, from: wScale[k], to: s });
      wScale[k] = s;
      q = quantizeBias(b[c], sx, s);
    }
    codes[c] = q;
    scale[c] = biasScale(sx, wScale[k]);
  }
  if (b.length !== C)
    throw new QpError('INTERNAL', `Layer "${n.name}" has ${b.length} biases for ${C} output channels.`);
  let weight = w;
  if (rescaled.length) {
    const qparams = { ...w.qparams, scale: wScale };
    const values = new Float32Array(w.codes.length);
    // the deployed weights of the rescaled channels: the simulated values re-rounded on the new grid
    const layoutInner = w.dims.slice(w.qparams.axis + 1).reduce((a, x) => a * x, 1);
    for (let i = 0; i < values.length; i++) {
      const c = Math.floor(i / layoutInner) % wScale.length;
      values[i] = (w.codes[i] - w.qparams.zeroPoint[c]) * w.qparams.scale[c];
    }
    const newCodes = quantizeToInt(values, w.dims, qparams);
    weight = { ...w, codes: newCodes, qparams };
  }
  return { weight, bias: { codes, scale, float: b }, rescaled };
}

/** Follows single-consumer value-preserving ops (Flatten, Reshape, Squeeze) to a quantized tensor. */
function reshapeChainTo(
  start: string,
  cons: Map<string, Node[]>,
  acts: Map<string, ActQuant>,
  outputs: Set<string>,
): ActQuant | undefined {
  let t = start;
  for (let i = 0; i < 4; i++) {
    if (acts.has(t)) return acts.get(t);
    const c = cons.get(t) ?? [];
    if (c.length !== 1 || outputs.has(t)) return undefined;
    const n = c[0];
    if (n.domain !== '' || !['Flatten', 'Reshape', 'Squeeze', 'Unsqueeze'].includes(n.opType) || n.inputs[0] !== t)
      return undefined;
    t = n.outputs[0];
  }
  return acts.get(t);
}

/**
 * The integer plan of a deployable run (see module header). Throws QpError
 * EXPORT_UNSUPPORTED when a quantizer is not 8 bits: onnxruntime's integer kernels take
 * int8/uint8 tensors only.
 */
export function planIntegerKernels(d: Deployable): IntegerPlan {
  const bad = [
    ...d.weights.filter((w) => rangeBits(w.qparams).bits !== 8).map((w) => `weight "${w.initializer}"`),
    ...d.activations
      .filter((a) => rangeBits(a.qparams).bits !== 8 || a.qparams.scale.length !== 1)
      .map((a) => `activation "${a.tensor}"`),
  ];
  if (bad.length) {
    throw new QpError(
      'EXPORT_UNSUPPORTED',
      `onnxruntime's integer kernels take 8-bit tensors (per-tensor activations), and this run has ${bad.length} other quantizer(s) (${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ', …' : ''}). Deploy an 8-bit configuration.`,
    );
  }
  const g = d.graph;
  const acts = new Map<string, ActQuant>();
  for (const a of d.activations) acts.set(a.tensor, actQuant(a.tensor, a.qparams)!);
  const cons = consumersOf(g);
  const outputs = new Set(g.outputs.map((o) => o.name));
  const layers: IntegerLayer[] = [];
  const float = (n: Node, reason: string, inputs: ActQuant[] = []) =>
    layers.push({ node: n.name, opType: n.opType, kernel: 'float', inputs, reason });

  /** The quantizer an op's output code is written in, and what had to be absorbed or inserted for it. */
  const outputQuant = (n: Node): { output: ActQuant; absorbed?: string; insertedAt?: string } | { why: string } => {
    const out = n.outputs[0];
    if (outputs.has(out)) return { why: 'its output is a model output, kept in float' };
    const direct = acts.get(out);
    if (direct) return { output: direct };
    const c = cons.get(out) ?? [];
    const act =
      c.length === 1 && c[0].domain === '' && (c[0].opType === 'Relu' || c[0].opType === 'Clip') ? c[0] : undefined;
    const q = act && !outputs.has(act.outputs[0]) ? acts.get(act.outputs[0]) : undefined;
    if (act && q) {
      if (clipRedundant(g, act, q)) return { output: q, absorbed: act.name };
      if (clipCommutes(g, act, q)) return { output: { ...q, tensor: out }, insertedAt: out };
      return {
        why: `its ${act.opType} (${act.name}) clips inside the range of the quantizer after it, which onnxruntime does not fuse`,
      };
    }
    return {
      why: 'its output is not quantized (the placement quantizes only the inputs of other ops here), so it runs in float on dequantized inputs',
    };
  };

  for (const n of g.nodes) {
    if (n.domain !== '') continue;
    if (n.opType === 'Conv' || n.opType === 'Gemm' || n.opType === 'MatMul') {
      const w = weightFor(d, n.name);
      if (!w) continue; // an unquantized layer: plain float, as simulated
      const xName = n.inputs.find((i) => i !== w.initializer)!;
      const x = acts.get(xName);
      if (!x) {
        float(n, 'its input is not quantized');
        continue;
      }
      if (n.opType === 'Gemm') {
        // onnxruntime may fuse a Gemm with a quantized output into QGemm, whose arithmetic is not modelled here
        float(n, 'a Gemm runs in float here (QGemm is not modelled)', [x]);
        continue;
      }
      if (n.opType === 'MatMul' && n.inputs[1] !== w.initializer) {
        float(n, 'its weight is the left operand', [x]);
        continue;
      }
      const o = outputQuant(n);
      const { weight, bias, rescaled } = integerBias(g, n, w, x.scale);
      if ('why' in o) {
        // a MatMul with a float output followed by its bias Add becomes one float Gemm (MatMulAddFusion)
        float(n, o.why, [x]);
        continue;
      }
      layers.push({
        node: n.name,
        opType: n.opType,
        kernel: n.opType === 'Conv' ? 'QLinearConv' : 'QLinearMatMul',
        inputs: [x],
        ...o,
        weight,
        bias,
        ...(rescaled.length ? { rescaled } : {}),
      });
    } else if (n.opType === 'Add') {
      const a = acts.get(n.inputs[0]);
      const b = acts.get(n.inputs[1]);
      if (!a || !b) {
        const quantized = [a, b].filter((q): q is ActQuant => !!q);
        // a float Add is worth listing only where it joins quantized tensors
        if (quantized.length) float(n, 'not both of its inputs are quantized', quantized);
        continue;
      }
      const o = outputQuant(n);
      if ('why' in o || o.insertedAt) {
        float(n, 'why' in o ? o.why : 'its activation is not covered by its output quantizer', [a, b]);
        continue;
      }
      layers.push({ node: n.name, opType: n.opType, kernel: 'QLinearAdd', inputs: [a, b], ...o });
    } else if (n.opType === 'GlobalAveragePool') {
      const x = acts.get(n.inputs[0]);
      if (!x) continue;
      const out = n.outputs[0];
      const y = reshapeChainTo(out, cons, acts, outputs);
      if (!y) {
        float(n, 'no quantizer follows its output', [x]);
        continue;
      }
      layers.push({
        node: n.name,
        opType: n.opType,
        kernel: 'QLinearGlobalAveragePool',
        inputs: [x],
        output: { ...y, tensor: out },
        ...(y.tensor !== out ? { insertedAt: out } : {}),
      });
    }
  }
  return { layers, activations: acts };
}
