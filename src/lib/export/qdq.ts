/**
 * The QDQ ONNX model of a deployable run: every quantized weight stored as an integer
 * initializer followed by DequantizeLinear (per-channel with `axis`), every simulated
 * activation point as a QuantizeLinear → DequantizeLinear pair that the point's consumers
 * read (graph outputs keep the float tensor, as in the simulation).
 *
 * Bit for bit with the fake-quant graph (src/lib/onnx/fake-quant.ts): QuantizeLinear
 * computes saturate(round_half_even(x / s) + zp) and DequantizeLinear (q − zp)·s, both in
 * float32, which equals Clip(Round(x / s), qmin − zp, qmax − zp)·s when the integer
 * type's range is [qmin, qmax]. A narrower range (signed narrow range, e.g. TensorRT's
 * [-127, 127]) gets a Clip to (qmin − zp)·s … (qmax − zp)·s in front of QuantizeLinear,
 * which lands on the same codes. Zero points are integers and power-of-two scales are
 * plain scales, so asymmetric, unsigned and power-of-two runs need nothing else.
 * Integers of 8 bits need opset 13, 4 and 16 bits opset 21 (int4/uint4, int16/uint16);
 * other widths have no ONNX integer type and are refused.
 *
 * Integer weights also avoid onnxruntime's re-quantization of float weights behind a
 * Q/DQ pair at graph optimization level ≥ basic. A second such trap is the bias: given a
 * Conv/Gemm whose input and weight come from DequantizeLinear, onnxruntime (≥ basic)
 * quantizes a float bias to int32 at scale s_x·s_w, which the simulation does not do
 * (top-1 agreement with the simulation then falls well short: docs/results.md, "Export").
 * So each quantized layer's bias is added by a separate Add after it, in float32
 * as simulated; runtimes that want an int32 bias fold that Add back themselves.
 */
import { QpError } from '../util/errors.ts';
import {
  type Graph,
  type Node,
  type TensorData,
  NameAllocator,
  cloneGraph,
  makeNode,
  makeTensor,
  pruneInitializers,
} from '../onnx/ir.ts';
import type { QParams } from '../quant/types.ts';
import { type Deployable, rangeBits } from './deployable.ts';
import { raiseOpset } from './opset.ts';
import { type Chain, spliceChains } from './splice.ts';

/** ONNX TensorProto data types of the integer storage types. */
const INT_TYPES = {
  4: { signed: 22, unsigned: 21 },
  8: { signed: 3, unsigned: 2 },
  16: { signed: 5, unsigned: 4 },
} as const;
type StorageBits = keyof typeof INT_TYPES;

/** Storage bits for a range, or undefined when ONNX has no integer type of that width. */
function storageBits(bits: number): StorageBits | undefined {
  return bits === 4 || bits === 8 || bits === 16 ? bits : undefined;
}

/** What keeps a run from being a QDQ model (empty when it can be one). */
export function qdqProblems(d: Deployable): string[] {
  const byBits = new Map<number, string[]>();
  const add = (bits: number, what: string) => {
    if (storageBits(bits)) return;
    if (!byBits.has(bits)) byBits.set(bits, []);
    byBits.get(bits)!.push(what);
  };
  for (const w of d.weights) add(rangeBits(w.qparams).bits, `weight "${w.initializer}"`);
  for (const a of d.activations) add(rangeBits(a.qparams).bits, `activation "${a.tensor}"`);
  return [...byBits].map(
    ([bits, list]) =>
      `${list.length} tensor(s) at ${bits} bits (${list.slice(0, 3).join(', ')}${list.length > 3 ? ', …' : ''})`,
  );
}

/** A tensor of integer codes in the ONNX storage type (int4/uint4 packed two per byte, low nibble first). */
function intTensor(
  name: string,
  dims: number[],
  codes: ArrayLike<number>,
  bits: StorageBits,
  signed: boolean,
): TensorData {
  const onnxType = INT_TYPES[bits][signed ? 'signed' : 'unsigned'];
  if (bits === 8) return makeTensor(name, dims, Array.from(codes), signed ? 'int8' : 'uint8');
  if (bits === 16) {
    const a = signed ? Int16Array.from(codes) : Uint16Array.from(codes);
    return { name, dtype: 'other', onnxType, dims, data: new Uint8Array(a.buffer) };
  }
  const bytes = new Uint8Array(Math.ceil(codes.length / 2));
  for (let i = 0; i < codes.length; i++) bytes[i >> 1] |= (codes[i] & 0xf) << ((i & 1) * 4);
  return { name, dtype: 'other', onnxType, dims, data: bytes };
}

function scaleAndZero(
  names: NameAllocator,
  g: Graph,
  base: string,
  qp: QParams,
  bits: StorageBits,
  signed: boolean,
): [string, string] {
  const per = qp.axis >= 0;
  const dims = per ? [qp.scale.length] : [];
  const s = names.take(`${base}_scale`);
  const z = names.take(`${base}_zero_point`);
  g.initializers.set(s, makeTensor(s, dims, Float32Array.from(per ? qp.scale : [qp.scale[0]])));
  g.initializers.set(z, intTensor(z, dims, per ? qp.zeroPoint : [qp.zeroPoint[0]], bits, signed));
  return [s, z];
}

export interface QdqModel {
  graph: Graph;
  /** activation points that needed a Clip for a narrow integer range */
  clipped: number;
  /**
   * 4-bit activation points whose QuantizeLinear reads a Clip's output (a ReLU6, or a narrow
   * range's Clip): onnxruntime 1.30 refuses such a file at graph optimization levels above
   * basic (see CLIP_INT4_NOTE)
   */
  clipBeforeInt4: string[];
}

/**
 * onnxruntime 1.30 (node and web) fails to load a QDQ file where a Clip feeds a QuantizeLinear
 * with a 4-bit zero point, with its default (all) optimizations: its Clip→QuantizeLinear
 * fusion reads 8-bit zero points only and throws "Unexpected data type for QuantizeLinear
 * input y_zero_point of 21" (uint4; 22 for int4). At level basic the file loads and runs
 * as written (tests/integration/export-learned.test.ts).
 */
export const CLIP_INT4_NOTE =
  'model.qdq.onnx has 4-bit activations read from a Clip (ReLU6). onnxruntime 1.30 refuses to load such a file with its default graph optimizations (its Clip→QuantizeLinear fusion knows only 8-bit zero points: "Unexpected data type for QuantizeLinear input y_zero_point of 21"); load it with graph optimization level basic (onnxruntime: graphOptimizationLevel \'basic\').';

/**
 * Build the QDQ graph (see module header). Throws QpError EXPORT_UNSUPPORTED for bit
 * widths ONNX cannot store and for models whose opset cannot be raised.
 */
export function buildQdq(d: Deployable): QdqModel {
  const problems = qdqProblems(d);
  if (problems.length) {
    throw new QpError(
      'EXPORT_UNSUPPORTED',
      `A QDQ ONNX model stores integers of 4, 8 or 16 bits only, and this run has ${problems.join('; ')}. ranges.json still describes every quantizer; use 4 or 8 bits for a deployable ONNX model.`,
    );
  }
  const all = [...d.weights.map((w) => w.qparams), ...d.activations.map((a) => a.qparams)];
  const needs21 = all.some((q) => rangeBits(q).bits !== 8);
  const g = cloneGraph(d.graph, { shareInitializers: true });
  raiseOpset(g, needs21 ? 21 : 13);
  const names = new NameAllocator(g);

  const weightNodes: Node[] = [];
  for (const w of d.weights) {
    const { bits, signed } = rangeBits(w.qparams);
    const sb = storageBits(bits)!;
    const q = names.take(`${w.initializer}_quantized`);
    g.initializers.set(q, intTensor(q, w.dims, w.codes, sb, signed));
    const [s, z] = scaleAndZero(names, g, w.initializer, w.qparams, sb, signed);
    g.initializers.delete(w.initializer);
    const attrs: Record<string, number> = w.qparams.axis >= 0 ? { axis: w.qparams.axis } : {};
    weightNodes.push(
      makeNode('DequantizeLinear', [q, s, z], [w.initializer], attrs, {
        name: names.take(`${w.initializer}_DequantizeLinear`),
      }),
    );
  }

  const quantizedLayers = new Set(d.weights.map((w) => w.node));
  const biasAdds = new Map<string, Node>();
  for (const n of g.nodes) {
    if (!quantizedLayers.has(n.name) || !n.inputs[2] || (n.opType !== 'Conv' && n.opType !== 'Gemm')) continue;
    const bias = g.initializers.get(n.inputs[2]);
    if (!bias || bias.dtype !== 'float32') continue;
    let dims = bias.dims;
    let data = bias.data as Float32Array;
    if (n.opType === 'Conv') {
      const rank = g.initializers.has(n.inputs[1])
        ? g.initializers.get(n.inputs[1])!.dims.length
        : (d.weights.find((w) => w.node === n.name)?.dims.length ?? 4);
      dims = [bias.dims[0], ...new Array(rank - 2).fill(1)];
    } else {
      const beta = typeof n.attrs.beta === 'number' ? n.attrs.beta : 1;
      if (beta !== 1) data = Float32Array.from(data, (v) => v * beta);
      delete n.attrs.beta;
    }
    const b = names.take(`${n.name}_bias`);
    g.initializers.set(b, { name: b, dtype: 'float32', dims, data });
    const out = n.outputs[0];
    const raw = names.take(`${out}_before_bias`);
    n.outputs = [raw, ...n.outputs.slice(1)];
    n.inputs = n.inputs.slice(0, 2);
    biasAdds.set(n.name, makeNode('Add', [raw, b], [out], {}, { name: names.take(`${n.name}_BiasAdd`) }));
  }

  const chains = new Map<string, Chain>();
  let clipped = 0;
  const producers = new Map(g.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const clipBeforeInt4: string[] = [];
  for (const a of d.activations) {
    const qp = a.qparams;
    const { bits, signed } = rangeBits(qp);
    const sb = storageBits(bits)!;
    const full = signed ? { qmin: -(2 ** (sb - 1)), qmax: 2 ** (sb - 1) - 1 } : { qmin: 0, qmax: 2 ** sb - 1 };
    const t = a.tensor;
    const chain: Node[] = [];
    const [s, z] = scaleAndZero(names, g, t, qp, sb, signed);
    let x = t;
    if (qp.qmin !== full.qmin || qp.qmax !== full.qmax) {
      // narrow integer range: clip in float so QuantizeLinear lands on [qmin, qmax]
      const lo = names.take(`${t}_clip_min`);
      const hi = names.take(`${t}_clip_max`);
      g.initializers.set(lo, makeTensor(lo, [], Float32Array.of((qp.qmin - qp.zeroPoint[0]) * qp.scale[0])));
      g.initializers.set(hi, makeTensor(hi, [], Float32Array.of((qp.qmax - qp.zeroPoint[0]) * qp.scale[0])));
      x = names.take(`${t}_clipped`);
      chain.push(makeNode('Clip', [t, lo, hi], [x], {}, { name: names.take(`${t}_Clip`) }));
      clipped++;
    }
    const q = names.take(`${t}_quantized`);
    const dq = names.take(`${t}_dequantized`);
    chain.push(
      makeNode('QuantizeLinear', [x, s, z], [q], {}, { name: names.take(`${t}_QuantizeLinear`) }),
      makeNode('DequantizeLinear', [q, s, z], [dq], {}, { name: names.take(`${t}_DequantizeLinear`) }),
    );
    chains.set(t, { nodes: chain, output: dq });
    if (sb === 4 && (x !== t || producers.get(t)?.opType === 'Clip')) clipBeforeInt4.push(t);
  }
  spliceChains(g, chains, weightNodes, biasAdds);
  pruneInitializers(g); // the replaced biases
  g.meta = {
    ...g.meta,
    producerName: 'quantization-playground',
    metadataProps: [
      ...g.meta.metadataProps.filter((p) => p.key !== 'quantization'),
      { key: 'quantization', value: 'QDQ export of a simulated run' },
    ],
  };
  return { graph: g, clipped, clipBeforeInt4 };
}
