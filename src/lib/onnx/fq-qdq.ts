/**
 * The same fake-quant graph in fewer passes, bit for bit: each 8-bit per-tensor activation
 * chain Div(t, s) → Round → Clip(lo, hi) → Mul(·, s) that insertFakeQuant builds becomes
 * QuantizeLinear(t, s, zp) → DequantizeLinear(·, s, zp).
 *
 * Why it is exact: onnxruntime's QuantizeLinear computes saturate(round_half_even(t / s) + zp)
 * with a true division, and DequantizeLinear (q − zp)·s in float32, the very operations of the
 * chain (Round is half-to-even, the Clip bounds are lo = qmin − zp, hi = qmax − zp). The
 * saturation range of int8/uint8 must then be the quantizer's own:
 * - 256 levels (hi − lo = 255): uint8 with zp = −lo covers exactly [lo, hi];
 * - 255 levels (narrow ranges such as TensorRT's [−127, 127]): int8 with lo ↦ −127 leaves
 *   one extra code below lo. A tensor that cannot be negative (Relu, Sigmoid, a Clip with a
 *   lower bound ≥ 0) never reaches it (t/s ≥ 0 > lo − ½); any other tensor gets a Clip at
 *   lo·s after DequantizeLinear, which maps that code back onto lo·s exactly (the same
 *   float32 product);
 * - other widths (2–7, 9–16 bits) keep the element-wise chain.
 * Why it is faster: two passes instead of four, and the intermediate is one byte wide
 * (bench:perf prints the ratio; docs/performance.md, "The fake-quant forms").
 * Sessions must be created with QDQ_SESSION_CONFIG: onnxruntime's QDQ fusions would turn
 * DequantizeLinear → Conv → QuantizeLinear into integer kernels, which round differently.
 * QuantizeLinear/DequantizeLinear with a scalar scale exist since opset 10, below the opset
 * 11 insertFakeQuant already requires. Returns a new graph; never mutates its input.
 */
import {
  type Graph,
  type Node,
  NameAllocator,
  cloneGraph,
  consumersOf,
  floatScalar,
  makeNode,
  makeTensor,
  producerOf,
  scalarOperand,
} from './ir.ts';

/** Session config that keeps onnxruntime from fusing the Q/DQ pairs into integer kernels. */
export const QDQ_SESSION_CONFIG = { session: { disable_quant_qdq: '1' } } as const;

export interface QdqReport {
  /** chains replaced by QuantizeLinear → DequantizeLinear */
  replaced: number;
  /** of those, narrow-range chains that needed the Clip after DequantizeLinear */
  clipped: number;
  /** chains left as they are (bit widths int8/uint8 cannot express exactly) */
  kept: number;
}

/** Whether the node's output can never be negative. */
function nonNegative(g: Graph, n: Node | undefined): boolean {
  if (!n || n.domain !== '') return false;
  if (n.opType === 'Relu' || n.opType === 'Sigmoid' || n.opType === 'Softmax') return true;
  if (n.opType === 'Clip') {
    const lo = scalarOperand(g, n, 1, 'min');
    return lo !== undefined && lo >= 0;
  }
  return false;
}

export function fakeQuantAsQdq(fqGraph: Graph): { graph: Graph; report: QdqReport } {
  const g = cloneGraph(fqGraph, { shareInitializers: true });
  const names = new NameAllocator(g);
  const outputs = new Set(g.outputs.map((o) => o.name));
  const cons = consumersOf(g);
  const prod = producerOf(g);
  const report: QdqReport = { replaced: 0, clipped: 0, kept: 0 };
  const replace = new Map<Node, Node[]>();
  const drop = new Set<Node>();
  const only = (tensor: string, op: string): Node | undefined => {
    const c = cons.get(tensor);
    return !outputs.has(tensor) && c?.length === 1 && c[0].opType === op && c[0].domain === '' ? c[0] : undefined;
  };

  for (const div of g.nodes) {
    if (div.opType !== 'Div' || div.domain !== '') continue;
    const s = floatScalar(g, div.inputs[1]);
    if (s === undefined || !(s > 0)) continue;
    const round = only(div.outputs[0], 'Round');
    const clip = round && only(round.outputs[0], 'Clip');
    const mul = clip && only(clip.outputs[0], 'Mul');
    if (!round || !clip || !mul || mul.inputs[0] !== clip.outputs[0] || floatScalar(g, mul.inputs[1]) !== s) continue;
    const lo = floatScalar(g, clip.inputs[1]);
    const hi = floatScalar(g, clip.inputs[2]);
    if (lo === undefined || hi === undefined || !Number.isInteger(lo) || !Number.isInteger(hi) || lo > 0 || hi < 0)
      continue;
    const t = div.inputs[0];
    let zp: number;
    let dtype: 'uint8' | 'int8';
    let needClip = false;
    if (hi - lo === 255) {
      [dtype, zp] = ['uint8', -lo];
    } else if (hi - lo === 254 && -127 - lo >= -128) {
      [dtype, zp] = ['int8', -127 - lo];
      needClip = !nonNegative(g, prod.get(t));
    } else {
      report.kept++;
      continue;
    }
    const zpName = names.take(`${t}_qdq_zp`);
    g.initializers.set(zpName, makeTensor(zpName, [], dtype === 'int8' ? Int8Array.of(zp) : Uint8Array.of(zp), dtype));
    const q = names.take(`${t}_qdq_q`);
    const out = mul.outputs[0];
    const dqOut = needClip ? names.take(`${t}_qdq_dq`) : out;
    const chain = [
      makeNode('QuantizeLinear', [t, div.inputs[1], zpName], [q], {}, { name: names.take(`${t}_fq/Quantize`) }),
      makeNode('DequantizeLinear', [q, div.inputs[1], zpName], [dqOut], {}, { name: names.take(`${t}_fq/Dequantize`) }),
    ];
    if (needClip) {
      const low = names.take(`${t}_qdq_low`);
      g.initializers.set(low, makeTensor(low, [], Float32Array.of(Math.fround(lo * s))));
      chain.push(makeNode('Clip', [dqOut, low], [out], {}, { name: names.take(`${t}_fq/ClipLow`) }));
      report.clipped++;
    }
    replace.set(div, chain);
    drop.add(round).add(clip).add(mul);
    report.replaced++;
  }
  g.nodes = g.nodes.flatMap((n) => replace.get(n) ?? (drop.has(n) ? [] : [n]));
  return { graph: g, report };
}
