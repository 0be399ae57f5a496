/**
 * The deploy-exact simulation: a float ONNX graph (plain ops, so it runs on wasm and
 * WebGPU like the fake-quant graph) that computes what onnxruntime's integer kernels
 * compute for the integer export (integer-qdq.ts), layer by layer:
 * - each quantized tensor is carried as its centered integer code c = q − z (a float
 *   holding an integer) next to its value c·s;
 * - an integer Conv/MatMul convolves the centered codes with the centered integer weights
 *   and adds the int32 bias: every partial sum is an integer, exact in float32 below 2^24,
 *   as the kernel's int32 accumulator; then it multiplies by the kernel's float32 output
 *   scale M (kernels.ts outputMultiplier), rounds half to even and saturates to uint8
 *   (MlasRequantizeOutput); an absorbed Relu/Clip disappears as in the fused kernel;
 * - QLinearAdd and QLinearGlobalAveragePool follow their MLAS formulas (kernels.ts);
 * - every other op runs in float on the values, as onnxruntime runs it, and a quantized
 *   output of such an op is quantized to the full uint8 range (QuantizeLinear saturates
 *   to the type, not to a narrow range). Values are made as the deployment makes them
 *   (DequantizeLinear of the uint8 code) and a float layer's quantized weights come from a
 *   DequantizeLinear of their codes, so onnxruntime picks the same float kernels for the
 *   ops left in float as in the deployed session (with plain float weights it would pick
 *   other ones, whose sums round differently: measured on Academic, whose projections stay
 *   in float).
 * The per-channel factors are shaped [1, C, 1, 1] (Conv) or [1, N] (MatMul): onnxruntime
 * folds a Conv → Mul by a [C, 1, 1] constant into the Conv's weights (ConvMulFusion) and a
 * MatMul → Mul by a scalar into the MatMul, which would make the sums non-integer.
 *
 * The default mode of the project stays MQBench's simulation (the fake-quant graph); this
 * graph is the `deployExact` mode. Pure: a new graph from a run; nothing is mutated.
 */
import { QpError } from '../util/errors.ts';
import type { SessionOptions } from '../engine/types.ts';
import type { QuantizedRun } from '../experiment/types.ts';
import {
  type Graph,
  type Node,
  NameAllocator,
  cloneGraph,
  cloneNode,
  makeNode,
  makeTensor,
  pruneInitializers,
} from '../onnx/ir.ts';
import { type Deployable, toDeployable } from './deployable.ts';
import { ACT_SIGNED, type ActQuant, type IntegerLayer, type IntegerPlan, planIntegerKernels } from './integer-plan.ts';
import { outputMultiplier, typeRange } from './kernels.ts';
import { raiseOpset } from './opset.ts';

/**
 * Session options for deploy-exact graphs: the deployment's own (onnxruntime's defaults,
 * QDQ transforms on). The ops that stay in float then get the kernels the deployed session
 * gives them (a Conv whose weights come from a DequantizeLinear, fused with its residual Add),
 * so their float sums round the same way; the fake-quant graph's QDQ_SESSION_CONFIG would
 * fold those weights and pick other kernels.
 */
export const DEPLOY_EXACT_SESSION: SessionOptions = {};

export interface DeployExactModel {
  graph: Graph;
  plan: IntegerPlan;
  /** quantized tensor → the graph tensor holding its centered integer codes (q − z) */
  codes: Map<string, string>;
}

/** The deploy-exact graph of a simulated run (see module header). */
export function deployExactGraph(run: Omit<QuantizedRun, 'evaluation'>): DeployExactModel {
  const d = toDeployable(run);
  return deployExactFromDeployable(d, planIntegerKernels(d));
}

/**
 * The deploy-exact graph of a deployable and its integer plan. Throws QpError INTERNAL
 * when the plan names a tensor the graph lacks.
 */
export function deployExactFromDeployable(d: Deployable, plan: IntegerPlan): DeployExactModel {
  const src = d.graph;
  const g = cloneGraph(src, { shareInitializers: true });
  raiseOpset(g, 13); // per-axis DequantizeLinear, and ReduceSum's axes as an input
  const names = new NameAllocator(g);
  const nodes: Node[] = [];
  const { lo: tLo, hi: tHi } = typeRange(ACT_SIGNED);
  const value = new Map<string, string>(); // tensor → name of its (de)quantized value
  const codes = new Map<string, string>(); // tensor → name of its centered codes
  const outputs = new Set(g.outputs.map((o) => o.name));
  const constant = (base: string, dims: number[], data: ArrayLike<number>) => {
    const n = names.take(base);
    g.initializers.set(n, makeTensor(n, dims, Float32Array.from(data)));
    return n;
  };
  const node = (op: string, inputs: string[], base: string, attrs: Node['attrs'] = {}) => {
    const out = names.take(base);
    nodes.push(makeNode(op, inputs, [out], attrs, { name: names.take(`${base}/${op}`) }));
    return out;
  };
  /** Centered code of a float tensor as QuantizeLinear makes it: clamp(round(x / s), 0 − z, 255 − z). */
  const quantize = (t: string, q: ActQuant) => {
    const s = constant(`${t}_de_scale`, [], [q.scale]);
    const r = node('Round', [node('Div', [t, s], `${t}_de_div`)], `${t}_de_round`);
    const lo = constant(`${t}_de_lo`, [], [tLo - q.zeroPoint]);
    const hi = constant(`${t}_de_hi`, [], [tHi - q.zeroPoint]);
    publish(t, node('Clip', [r, lo, hi], `${t}_de_code`), q);
  };
  /** Registers a tensor's codes and makes its value (codes · s) what consumers read. */
  const publish = (t: string, code: string, q: ActQuant) => {
    codes.set(t, code);
    // the value as the deployment makes it: DequantizeLinear of the uint8 code (see header)
    const z = names.take(`${t}_de_zero_point`);
    g.initializers.set(z, makeTensor(z, [], [q.zeroPoint], 'uint8'));
    const raw = node('Add', [code, constant(`${t}_de_zp`, [], [q.zeroPoint])], `${t}_de_raw`);
    const byte = node('Cast', [raw], `${t}_de_byte`, { to: 2 });
    value.set(t, node('DequantizeLinear', [byte, constant(`${t}_de_dq_scale`, [], [q.scale]), z], `${t}_de_value`));
  };
  /** A float layer's quantized weight as the deployment reads it: DequantizeLinear of its integer codes. */
  const weightDq = (n: Node): Node => {
    const w = d.weights.find((x) => x.node === n.name);
    if (!w) return n;
    const signed = w.qparams.qmin < 0;
    const per = w.qparams.axis >= 0;
    const dims = per ? [w.qparams.scale.length] : [];
    const q = names.take(`${w.initializer}_de_codes`);
    const z = names.take(`${w.initializer}_de_zero_point`);
    g.initializers.set(q, makeTensor(q, w.dims, Array.from(w.codes), signed ? 'int8' : 'uint8'));
    g.initializers.set(
      z,
      makeTensor(z, dims, Array.from(per ? w.qparams.zeroPoint : [w.qparams.zeroPoint[0]]), signed ? 'int8' : 'uint8'),
    );
    const sc = constant(`${w.initializer}_de_scale`, dims, per ? w.qparams.scale : [w.qparams.scale[0]]);
    const out = names.take(`${w.initializer}_de_dequantized`);
    nodes.push(
      makeNode('DequantizeLinear', [q, sc, z], [out], per ? { axis: w.qparams.axis } : {}, {
        name: names.take(`${w.initializer}_de_DequantizeLinear`),
      }),
    );
    return { ...n, inputs: n.inputs.map((i) => (i === w.initializer ? out : i)) };
  };
  const codeOf = (t: string): string => {
    const c = codes.get(t);
    if (!c) throw new QpError('INTERNAL', `The deploy-exact graph has no integer codes for "${t}".`);
    return c;
  };
  /** Round, saturate and publish an integer kernel's scaled accumulator. */
  const requantized = (scaled: string, q: ActQuant, as: string) => {
    const lo = constant(`${as}_de_out_lo`, [], [tLo - q.zeroPoint]);
    const hi = constant(`${as}_de_out_hi`, [], [tHi - q.zeroPoint]);
    // saturate, then round: MlasRequantizeOutput's order (the same codes, bounds are integers)
    const clipped = node('Clip', [scaled, lo, hi], `${as}_de_sat`);
    publish(as, node('Round', [clipped], `${as}_de_code`), q);
  };

  const layers = new Map(plan.layers.map((l) => [l.node, l] as const));
  const skip = new Set(plan.layers.flatMap((l) => (l.absorbed ? [l.absorbed] : [])));
  for (const v of g.inputs) {
    const q = plan.activations.get(v.name);
    if (q) quantize(v.name, q);
  }
  for (const n of src.nodes) {
    if (skip.has(n.name)) continue;
    const layer = layers.get(n.name);
    if (layer && layer.kernel !== 'float') {
      integerLayer(n, layer);
      continue;
    }
    const c = weightDq(cloneNode(n));
    c.inputs = c.inputs.map((i) => value.get(i) ?? i);
    nodes.push(c);
    for (const o of n.outputs) {
      const q = plan.activations.get(o);
      if (q && !outputs.has(o)) quantize(o, q);
    }
  }

  function integerLayer(n: Node, l: IntegerLayer): void {
    const out = l.output!;
    const as = out.tensor;
    if (l.kernel === 'QLinearConv' || l.kernel === 'QLinearMatMul') {
      const w = l.weight!;
      const x = l.inputs[0];
      const per = w.qparams.axis >= 0;
      const C = per ? w.qparams.scale.length : (w.dims[l.kernel === 'QLinearConv' ? 0 : 1] ?? 1);
      const centered = Float32Array.from(w.codes, (v, i) => {
        const inner = w.dims.slice(w.qparams.axis + 1).reduce((a, b) => a * b, 1);
        return v - w.qparams.zeroPoint[per ? Math.floor(i / inner) % C : 0];
      });
      const wName = names.take(`${n.name}_de_weight`);
      g.initializers.set(wName, makeTensor(wName, w.dims, centered));
      const m = Array.from({ length: C }, (_, c) => outputMultiplier(x.scale, w.qparams.scale[per ? c : 0], out.scale));
      let acc: string;
      if (l.kernel === 'QLinearConv') {
        const inputs = [codeOf(x.tensor), wName];
        if (l.bias) inputs.push(constant(`${n.name}_de_bias`, [l.bias.codes.length], l.bias.codes));
        const conv = cloneNode(n);
        conv.inputs = inputs;
        conv.outputs = [names.take(`${n.name}_de_acc`)];
        conv.name = names.take(`${n.name}_de`);
        nodes.push(conv);
        acc = conv.outputs[0];
        // the constant first: onnxruntime's ConvMulFusion folds Conv → Mul(·, constant) into the weights
        const mName = constant(`${n.name}_de_multiplier`, [1, C, 1, 1], m);
        requantized(node('Mul', [mName, acc], `${n.name}_de_scaled`), out, as);
      } else {
        acc = node('MatMul', [codeOf(x.tensor), wName], `${n.name}_de_acc`);
        if (l.bias) acc = node('Add', [acc, constant(`${n.name}_de_bias`, [1, C], l.bias.codes)], `${n.name}_de_acc_b`);
        const mName = constant(`${n.name}_de_multiplier`, [1, C], m);
        requantized(node('Mul', [mName, acc], `${n.name}_de_scaled`), out, as);
      }
    } else if (l.kernel === 'QLinearAdd') {
      const [a, b] = l.inputs;
      const va = node('Mul', [codeOf(a.tensor), constant(`${n.name}_de_sa`, [], [a.scale])], `${n.name}_de_va`);
      const vb = node('Mul', [codeOf(b.tensor), constant(`${n.name}_de_sb`, [], [b.scale])], `${n.name}_de_vb`);
      const sum = node('Add', [va, vb], `${n.name}_de_sum`);
      const scaled = node('Div', [sum, constant(`${n.name}_de_sc`, [], [out.scale])], `${n.name}_de_scaled`);
      // clamp, add the zero point, round (nearbyintf(v + z_c)), back to a centered code
      const lo = constant(`${n.name}_de_lo`, [], [tLo - out.zeroPoint]);
      const hi = constant(`${n.name}_de_hi`, [], [tHi - out.zeroPoint]);
      const zc = constant(`${n.name}_de_zc`, [], [out.zeroPoint]);
      const shifted = node('Add', [node('Clip', [scaled, lo, hi], `${n.name}_de_sat`), zc], `${n.name}_de_shifted`);
      publish(as, node('Sub', [node('Round', [shifted], `${n.name}_de_rounded`), zc], `${n.name}_de_code`), out);
    } else if (l.kernel === 'QLinearGlobalAveragePool') {
      const x = l.inputs[0];
      const axes = names.take(`${n.name}_de_axes`);
      g.initializers.set(axes, makeTensor(axes, [2], [2n, 3n], 'int64'));
      const sum = node('ReduceSum', [codeOf(x.tensor), axes], `${n.name}_de_sum`, { keepdims: 1 });
      // s_x / (s_y · H·W) in float32, H·W read from the tensor's shape at run time
      const starts = names.take(`${n.name}_de_hw_start`);
      const ends = names.take(`${n.name}_de_hw_end`);
      g.initializers.set(starts, makeTensor(starts, [1], [2n], 'int64'));
      g.initializers.set(ends, makeTensor(ends, [1], [4n], 'int64'));
      const dims = node(
        'Slice',
        [node('Shape', [codeOf(x.tensor)], `${n.name}_de_shape`), starts, ends],
        `${n.name}_de_hw`,
      );
      const hw = node(
        'Cast',
        [node('ReduceProd', [dims], `${n.name}_de_hw_prod`, { keepdims: 0 })],
        `${n.name}_de_hw_f`,
        {
          to: 1,
        },
      );
      const denom = node('Mul', [constant(`${n.name}_de_sy`, [], [out.scale]), hw], `${n.name}_de_denom`);
      const scale = node('Div', [constant(`${n.name}_de_sx`, [], [x.scale]), denom], `${n.name}_de_scale`);
      requantized(node('Mul', [sum, scale], `${n.name}_de_scaled`), out, as);
    } else {
      throw new QpError('INTERNAL', `The deploy-exact graph has no model of the ${l.kernel} kernel.`);
    }
    // the op's own output, when the quantizer sits further on (absorbed activation)
    if (as !== n.outputs[0]) value.set(n.outputs[0], value.get(as)!);
  }

  g.nodes = nodes;
  pruneInitializers(g);
  return { graph: g, plan, codes };
}
