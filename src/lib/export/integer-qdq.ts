/**
 * The QDQ ONNX model as a deployment runs it on integer kernels: the layout onnxruntime's
 * own quantizer writes, which its QDQ transforms fuse into QLinearConv, QLinearMatMul,
 * QLinearAdd and QLinearGlobalAveragePool (see integer-plan.ts for which layers and why):
 * - weights as int8/uint8 initializers → DequantizeLinear (per-channel on their axis);
 * - each integer Conv/Gemm's bias as an int32 initializer → DequantizeLinear with scale
 *   s_x·s_w (axis 0), as the layer's third input;
 * - every 8-bit activation point as QuantizeLinear → DequantizeLinear in uint8 (a signed
 *   quantizer's zero point moved by 128: the same grid), in the full range (no Clip for a
 *   narrow range: the kernels saturate to the type);
 * - the output quantizers the plan inserts (after a Conv whose ReLU6 is not covered by the
 *   quantizer behind it; after a GlobalAveragePool followed by Flatten).
 * Unlike model.qdq.onnx (qdq.ts), run with onnxruntime's QDQ transforms off this graph is
 * not bit-exact with the simulation: the int32 bias and the full-range saturation are
 * deployment facts. Returns a new graph; the Deployable is not changed.
 */
import {
  type Graph,
  type Node,
  NameAllocator,
  cloneGraph,
  makeNode,
  makeTensor,
  pruneInitializers,
} from '../onnx/ir.ts';
import type { Deployable } from './deployable.ts';
import type { ActQuant, IntegerPlan } from './integer-plan.ts';
import { planIntegerKernels } from './integer-plan.ts';
import { raiseOpset } from './opset.ts';
import { type Chain, spliceChains } from './splice.ts';

export interface IntegerQdqModel {
  graph: Graph;
  plan: IntegerPlan;
  /** quantized tensor (activation point or inserted output) → its QuantizeLinear output (the codes) */
  codes: Map<string, string>;
}

/**
 * Build the integer-kernel QDQ graph (see module header). Throws QpError
 * EXPORT_UNSUPPORTED for quantizers other than 8 bits (planIntegerKernels) and for models
 * whose opset cannot be raised to 13.
 */
export function buildIntegerQdq(d: Deployable, plan: IntegerPlan = planIntegerKernels(d)): IntegerQdqModel {
  // Stryker disable next-line ObjectLiteral,BooleanLiteral: copying the initializers gives the same graph; sharing them saves memory only
  const g = cloneGraph(d.graph, { shareInitializers: true });
  raiseOpset(g, 13);
  const names = new NameAllocator(g);
  const scalarQ = (base: string, q: ActQuant): [string, string] => {
    const s = names.take(`${base}_scale`);
    const z = names.take(`${base}_zero_point`);
    g.initializers.set(s, makeTensor(s, [], Float32Array.of(q.scale)));
    g.initializers.set(z, makeTensor(z, [], [q.zeroPoint], 'uint8'));
    return [s, z];
  };

  const byNode = new Map(plan.layers.map((l) => [l.node, l] as const));
  const head: Node[] = [];
  // weights: the plan's (possibly re-rounded) codes
  for (const w of d.weights) {
    const layer = byNode.get(w.node);
    const dw = layer?.weight ?? w;
    const signed = dw.qparams.qmin < 0;
    const per = dw.qparams.axis >= 0;
    const q = names.take(`${w.initializer}_quantized`);
    g.initializers.set(q, makeTensor(q, dw.dims, Array.from(dw.codes), signed ? 'int8' : 'uint8'));
    const s = names.take(`${w.initializer}_scale`);
    const z = names.take(`${w.initializer}_zero_point`);
    const dims = per ? [dw.qparams.scale.length] : [];
    g.initializers.set(s, makeTensor(s, dims, Float32Array.from(per ? dw.qparams.scale : [dw.qparams.scale[0]])));
    g.initializers.set(
      z,
      makeTensor(
        z,
        dims,
        Array.from(per ? dw.qparams.zeroPoint : [dw.qparams.zeroPoint[0]]),
        signed ? 'int8' : 'uint8',
      ),
    );
    g.initializers.delete(w.initializer);
    head.push(
      makeNode('DequantizeLinear', [q, s, z], [w.initializer], per ? { axis: dw.qparams.axis } : {}, {
        name: names.take(`${w.initializer}_DequantizeLinear`),
      }),
    );
  }
  // int32 biases of the integer layers
  for (const n of g.nodes) {
    const layer = byNode.get(n.name);
    if (!layer?.bias) continue;
    const b = names.take(`${n.name}_bias_quantized`);
    const s = names.take(`${n.name}_bias_scale`);
    const out = names.take(`${n.name}_bias`);
    g.initializers.set(b, makeTensor(b, [layer.bias.codes.length], layer.bias.codes, 'int32'));
    g.initializers.set(s, makeTensor(s, [layer.bias.scale.length], layer.bias.scale));
    head.push(
      makeNode('DequantizeLinear', [b, s], [out], { axis: 0 }, { name: names.take(`${n.name}_bias_DequantizeLinear`) }),
    );
    n.inputs[2] = out;
    // Stryker disable all: no plan gives a Gemm an int32 bias today (a Gemm runs in float, integer-plan.ts); kept for when QGemm is modelled, as integerBias already folds beta into the codes
    if (n.opType === 'Gemm' && 'beta' in n.attrs) {
      n.attrs = { ...n.attrs };
      delete n.attrs.beta;
    }
    // Stryker restore all
  }

  // Q/DQ pairs: every activation point, and the outputs the plan adds
  const quantized = new Map<string, ActQuant>(plan.activations);
  for (const l of plan.layers) if (l.insertedAt && l.output) quantized.set(l.insertedAt, l.output);
  const chains = new Map<string, Chain>();
  const codes = new Map<string, string>();
  for (const [t, q] of quantized) {
    const [s, z] = scalarQ(t, q);
    const qt = names.take(`${t}_quantized`);
    const dq = names.take(`${t}_dequantized`);
    chains.set(t, {
      nodes: [
        makeNode('QuantizeLinear', [t, s, z], [qt], {}, { name: names.take(`${t}_QuantizeLinear`) }),
        makeNode('DequantizeLinear', [qt, s, z], [dq], {}, { name: names.take(`${t}_DequantizeLinear`) }),
      ],
      output: dq,
    });
    codes.set(t, qt);
  }
  spliceChains(g, chains, head);
  pruneInitializers(g);
  g.meta = {
    ...g.meta,
    producerName: 'quantization-playground',
    metadataProps: [
      ...g.meta.metadataProps.filter((p) => p.key !== 'quantization'),
      { key: 'quantization', value: 'QDQ export for integer kernels (int32 biases, full-range 8-bit saturation)' },
    ],
  };
  return { graph: g, plan, codes };
}
