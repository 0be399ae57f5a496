/**
 * Quantized models the tests make themselves, in the forms other tools write:
 * - `ortStyleQdq`: the QDQ form of onnxruntime's static quantizer (quantize_static,
 *   QuantFormat.QDQ, default options): uint8 asymmetric activations with zero points on the
 *   inputs and outputs of Conv / Gemm / MatMul / Add / GlobalAveragePool, a Relu or Clip
 *   right after a Conv removed (its range is the output quantizer's), int8 symmetric
 *   weights in [-127, 127] per channel (scale max|w| / 127), int32 biases behind a
 *   DequantizeLinear at scale s_x·s_w, the logits quantized too;
 * - `qdqToQOperator`: a converter from a QDQ graph to the QOperator form (QLinearConv,
 *   QGemm, QLinearMatMul, QLinearAdd, QLinearGlobalAveragePool), keeping QuantizeLinear /
 *   DequantizeLinear where nothing converts (the edges, our export's float classifier);
 * - `engineFreeRun`: a simulated run of the small CNN (onnx-helpers) with fixed activation
 *   ranges, so unit tests can build our own QDQ export without an engine.
 * Not a test file itself.
 */
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import type { PreprocessSpec } from '../../src/lib/data/types.ts';
import type { Engine } from '../../src/lib/engine/types.ts';
import { collectActivationStats, DEFAULT_BINS } from '../../src/lib/experiment/calibrate.ts';
import { quantizeWeights, includeActivation, type ActivationQuant } from '../../src/lib/experiment/quantize.ts';
import type { QuantizedRun } from '../../src/lib/experiment/types.ts';
import { raiseOpset } from '../../src/lib/export/opset.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import {
  type Graph,
  type Node,
  NameAllocator,
  cloneGraph,
  consumersOf,
  makeNode,
  makeTensor,
  producerOf,
  pruneInitializers,
  scalarOperand,
} from '../../src/lib/onnx/ir.ts';
import { findQuantPoints, ALL_PLACEMENT } from '../../src/lib/onnx/placement.ts';
import { computeQParams } from '../../src/lib/quant/quantizer.ts';
import { roundHalfToEven } from '../../src/lib/quant/round.ts';
import { activationSpec } from '../../src/lib/quant/spec.ts';
import { smallCnn } from './onnx-helpers.ts';
import { quantizedRun } from './export-helpers.ts';

export type Ranges = Map<string, { min: number; max: number }>;

/**
 * Min/max of every tensor of `graph` (its inputs and every node output) over `crops`:
 * onnxruntime's default calibration, the ranges ortStyleQdq takes.
 */
export async function minMaxRanges(
  engine: Engine,
  graph: Graph,
  crops: Uint8Array[],
  spec: PreprocessSpec,
): Promise<Ranges> {
  const tensors = [...graph.inputs.map((v) => v.name), ...graph.nodes.flatMap((n) => n.outputs)];
  const stats = await collectActivationStats(engine, graph, tensors, crops, spec, {
    batchSize: 32,
    histBatchSize: 8,
    histogram: false,
    moments: false,
    bins: DEFAULT_BINS,
  });
  return new Map(
    [...stats].map(([t, s]) => [
      t,
      { min: Math.min(...s.batches.map((b) => b.min)), max: Math.max(...s.batches.map((b) => b.max)) },
    ]),
  );
}

const ACT_OPS = new Set(['Conv', 'Gemm', 'MatMul', 'Add', 'GlobalAveragePool']);

/** onnxruntime's uint8 asymmetric parameters: range widened to 0, s = (max − min)/255, zp = round(−min/s). */
function uint8Params(r: { min: number; max: number }): { s: number; zp: number } {
  const lo = Math.min(r.min, 0);
  const hi = Math.max(r.max, 0);
  const s = Math.fround(hi > lo ? (hi - lo) / 255 : 1);
  const zp = Math.max(0, Math.min(255, roundHalfToEven(-lo / s)));
  return { s, zp };
}

/**
 * The QDQ form onnxruntime's quantizer writes (see module header) of a float graph (BN
 * folded), with activation ranges per tensor of that graph (`ranges`: every tensor that
 * gets a quantizer; for a Conv followed by Relu/Clip, the activation's output).
 */
export function ortStyleQdq(src: Graph, ranges: Ranges): Graph {
  const g = cloneGraph(src, { shareInitializers: true });
  raiseOpset(g, 13);
  const names = new NameAllocator(g);
  // Relu / Clip right after a Conv (its only reader) go: the Conv writes the activation's output
  const cons = consumersOf(g);
  const prod = producerOf(g);
  const drop = new Set<Node>();
  for (const n of g.nodes) {
    if (n.opType !== 'Relu' && n.opType !== 'Clip') continue;
    const p = prod.get(n.inputs[0]);
    if (p?.opType !== 'Conv' || (cons.get(n.inputs[0]) ?? []).length !== 1) continue;
    p.outputs = [n.outputs[0]];
    drop.add(n);
  }
  g.nodes = g.nodes.filter((n) => !drop.has(n));
  const outputs = new Set(g.outputs.map((o) => o.name));

  const act = new Set<string>();
  for (const n of g.nodes) {
    if (!ACT_OPS.has(n.opType)) continue;
    const data = n.opType === 'Conv' || n.opType === 'Gemm' || n.opType === 'MatMul' ? [n.inputs[0]] : n.inputs;
    for (const t of [...data, n.outputs[0]]) if (t && !g.initializers.has(t)) act.add(t);
  }
  const params = new Map<string, { s: number; zp: number }>();
  const before: Node[] = [];
  const after = new Map<string, Node[]>();
  const rewire = new Map<string, string>();
  for (const t of act) {
    const r = ranges.get(t);
    if (!r) throw new Error(`ortStyleQdq: no range for tensor ${t}`);
    const p = uint8Params(r);
    params.set(t, p);
    const s = names.take(`${t}_scale`);
    const z = names.take(`${t}_zero_point`);
    g.initializers.set(s, makeTensor(s, [], Float32Array.of(p.s)));
    g.initializers.set(z, makeTensor(z, [], [p.zp], 'uint8'));
    let x = t;
    let out = names.take(`${t}_DequantizeLinear_Output`);
    if (outputs.has(t)) {
      // a graph output keeps its name on the DequantizeLinear; the producer writes <t>_QuantizeLinear_Input
      x = names.take(`${t}_QuantizeLinear_Input`);
      for (const n of g.nodes) n.outputs = n.outputs.map((o) => (o === t ? x : o));
      out = t;
    }
    const q = names.take(`${t}_QuantizeLinear_Output`);
    const chain = [
      makeNode('QuantizeLinear', [x, s, z], [q], {}, { name: names.take(`${t}_QuantizeLinear`) }),
      makeNode('DequantizeLinear', [q, s, z], [out], {}, { name: names.take(`${t}_DequantizeLinear`) }),
    ];
    if (out !== t) rewire.set(t, out);
    after.set(x, chain);
  }
  // weights and biases
  for (const n of g.nodes) {
    if (n.opType !== 'Conv' && n.opType !== 'Gemm' && n.opType !== 'MatMul') continue;
    const wName = n.inputs[1];
    const W = g.initializers.get(wName);
    if (!W || W.dtype !== 'float32') continue;
    const axis = n.opType === 'MatMul' || (n.opType === 'Gemm' && n.attrs.transB !== 1) ? 1 : 0;
    const C = W.dims[axis];
    const inner = W.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
    const data = W.data as Float32Array;
    const amax = new Float64Array(C);
    data.forEach((v, i) => {
      const c = Math.floor(i / inner) % C;
      amax[c] = Math.max(amax[c], Math.abs(v));
    });
    const scale = Float32Array.from(amax, (a) => (a > 0 ? a / 127 : 1));
    const codes = Array.from(data, (v, i) => {
      const q = roundHalfToEven(Math.fround(v / scale[Math.floor(i / inner) % C]));
      return Math.max(-127, Math.min(127, q));
    });
    const qn = names.take(`${wName}_quantized`);
    const sn = names.take(`${wName}_scale`);
    const zn = names.take(`${wName}_zero_point`);
    g.initializers.set(qn, makeTensor(qn, W.dims, codes, 'int8'));
    g.initializers.set(sn, makeTensor(sn, [C], scale));
    g.initializers.set(zn, makeTensor(zn, [C], new Array(C).fill(0), 'int8'));
    g.initializers.delete(wName);
    const wOut = names.take(`${wName}_DequantizeLinear_Output`);
    before.push(
      makeNode('DequantizeLinear', [qn, sn, zn], [wOut], { axis }, { name: names.take(`${wName}_DequantizeLinear`) }),
    );
    n.inputs[1] = wOut;
    const bName = n.inputs[2];
    const B = bName ? g.initializers.get(bName) : undefined;
    if (B && B.dtype === 'float32' && B.data.length === C) {
      const sx = params.get(n.inputs[0])!.s;
      const bs = Float32Array.from(scale, (sw) => sx * sw);
      const bq = Array.from(B.data as Float32Array, (v, c) => roundHalfToEven(v / bs[c]));
      const bqn = names.take(`${bName}_quantized`);
      const bsn = names.take(`${bName}_quantized_scale`);
      const bzn = names.take(`${bName}_quantized_zero_point`);
      g.initializers.set(bqn, makeTensor(bqn, B.dims, bq, 'int32'));
      g.initializers.set(bsn, makeTensor(bsn, [C], bs));
      g.initializers.set(bzn, makeTensor(bzn, [C], new Array(C).fill(0), 'int32'));
      const bOut = names.take(`${bName}_DequantizeLinear_Output`);
      before.push(
        makeNode(
          'DequantizeLinear',
          [bqn, bsn, bzn],
          [bOut],
          { axis: 0 },
          { name: names.take(`${bName}_DequantizeLinear`) },
        ),
      );
      n.inputs[2] = bOut;
    }
  }
  for (const n of g.nodes) n.inputs = n.inputs.map((i) => rewire.get(i) ?? i);
  const nodes: Node[] = [...before];
  for (const v of g.inputs) nodes.push(...(after.get(v.name) ?? []));
  for (const n of g.nodes) {
    nodes.push(n);
    for (const o of n.outputs) nodes.push(...(after.get(o) ?? []));
  }
  g.nodes = nodes;
  pruneInitializers(g);
  g.meta = { ...g.meta, producerName: 'onnx.quantize', metadataProps: [] };
  return g;
}

interface ActDq {
  /** the integer tensor (QuantizeLinear output) */
  int: string;
  scale: string;
  zp: string;
}

/**
 * QOperator form of a QDQ graph (see module header). Each Conv / Gemm / MatMul / Add /
 * GlobalAveragePool whose inputs come from activation DequantizeLinears and whose output
 * reaches a QuantizeLinear (through a float bias Add, a Relu or Clip the output range
 * makes redundant, or Flatten/Reshape) becomes its QLinear op; float biases are quantized
 * to int32 at s_x·s_w. Everything else stays as it is.
 */
export function qdqToQOperator(src: Graph): Graph {
  const g = cloneGraph(src, { shareInitializers: true });
  const names = new NameAllocator(g);
  const prod = producerOf(g);
  const cons = consumersOf(g);
  const outputs = new Set(g.outputs.map((o) => o.name));
  const init = (t: string) => g.initializers.get(t);
  /** float tensor (DQ output) → its activation DQ */
  const actDq = (t: string): ActDq | undefined => {
    const d = prod.get(t);
    if (d?.opType !== 'DequantizeLinear' || init(d.inputs[0])) return undefined;
    return { int: d.inputs[0], scale: d.inputs[1], zp: d.inputs[2] };
  };
  const constDq = (t: string) => {
    const d = prod.get(t);
    return d?.opType === 'DequantizeLinear' && init(d.inputs[0]) ? d : undefined;
  };
  const only = (t: string) => {
    const c = cons.get(t) ?? [];
    return !outputs.has(t) && c.length === 1 ? c[0] : undefined;
  };
  const f32 = (t: string) => init(t)!.data as Float32Array;
  const uint = (t: string) => Number(init(t)?.data[0] ?? 0);

  /** From a tensor, the chain to the QuantizeLinear that quantizes it. */
  const toQ = (t: string, allow: (n: Node) => boolean) => {
    const chain: Node[] = [];
    for (let k = 0; k < 4; k++) {
      const c = only(t);
      if (!c) return undefined;
      if (c.opType === 'QuantizeLinear') return { q: c, chain };
      if (!allow(c)) return undefined;
      chain.push(c);
      t = c.outputs[0];
    }
    return undefined;
  };
  const qRange = (q: Node) => {
    const s = f32(q.inputs[1])[0];
    const zt = init(q.inputs[2]);
    const zp = uint(q.inputs[2]);
    const signed = zt?.dtype === 'int8';
    const [lo, hi] = signed ? [-128, 127] : [0, 255];
    return { min: (lo - zp) * s, max: (hi - zp) * s };
  };
  const redundant = (act: Node, q: Node) => {
    const r = qRange(q);
    if (act.opType === 'Relu') return r.min >= 0;
    const lo = scalarOperand(g, act, 1, 'min') ?? -Infinity;
    const hi = scalarOperand(g, act, 2, 'max') ?? Infinity;
    return r.min >= lo && r.max <= hi + 1e-6;
  };

  const replace = new Map<Node, Node[]>();
  const drop = new Set<Node>();
  for (const n of g.nodes) {
    const op = n.opType;
    if (op === 'Conv' || op === 'Gemm' || op === 'MatMul') {
      const x = actDq(n.inputs[0]);
      const wd = constDq(n.inputs[1]);
      if (!x || !wd) continue;
      const hasBias = !!n.inputs[2];
      const end = toQ(n.outputs[0], (c) =>
        c.opType === 'Add'
          ? !hasBias && op !== 'MatMul' && c.inputs.some((i) => !!init(i))
          : c.opType === 'Relu' || c.opType === 'Clip',
      );
      if (!end || end.chain.some((c) => (c.opType === 'Relu' || c.opType === 'Clip') && !redundant(c, end.q))) continue;
      if (end.chain.filter((c) => c.opType === 'Add').length > 1) continue;
      const [wq, ws, wzp] = wd.inputs;
      const sx = f32(x.scale)[0];
      const sw = f32(ws);
      let bias: string | undefined;
      const biasFloat = (b: Float32Array) => {
        const name = names.take(`${n.name}_bias_int32`);
        g.initializers.set(
          name,
          makeTensor(
            name,
            [b.length],
            Array.from(b, (v, c) => roundHalfToEven(v / (sx * sw[sw.length > 1 ? c : 0]))),
            'int32',
          ),
        );
        return name;
      };
      if (hasBias) {
        const bd = constDq(n.inputs[2]);
        bias = bd ? bd.inputs[0] : init(n.inputs[2]) ? biasFloat(f32(n.inputs[2])) : undefined;
        if (!bias) continue;
      }
      const add = end.chain.find((c) => c.opType === 'Add');
      if (add) bias = biasFloat(f32(add.inputs.find((i) => !!init(i))!));
      const [, ys, yzp] = end.q.inputs;
      const y = end.q.outputs[0];
      let q: Node;
      if (op === 'Conv')
        q = makeNode(
          'QLinearConv',
          [x.int, x.scale, x.zp, wq, ws, wzp, ys, yzp, ...(bias ? [bias] : [])],
          [y],
          { ...n.attrs },
          { name: n.name },
        );
      else if (op === 'Gemm')
        q = makeNode(
          'QGemm',
          [x.int, x.scale, x.zp, wq, ws, wzp, bias ?? '', ys, yzp],
          [y],
          { transB: n.attrs.transB ?? 0 },
          { name: n.name, domain: 'com.microsoft' },
        );
      else q = makeNode('QLinearMatMul', [x.int, x.scale, x.zp, wq, ws, wzp, ys, yzp], [y], {}, { name: n.name });
      replace.set(n, [q]);
      for (const c of [...end.chain, end.q]) drop.add(c);
      continue;
    }
    if (op === 'Add') {
      const a = actDq(n.inputs[0]);
      const b = actDq(n.inputs[1]);
      const end = toQ(n.outputs[0], () => false);
      if (!a || !b || !end) continue;
      const [, ys, yzp] = end.q.inputs;
      replace.set(n, [
        makeNode(
          'QLinearAdd',
          [a.int, a.scale, a.zp, b.int, b.scale, b.zp, ys, yzp],
          [end.q.outputs[0]],
          {},
          { name: n.name, domain: 'com.microsoft' },
        ),
      ]);
      drop.add(end.q);
      continue;
    }
    if (op === 'GlobalAveragePool') {
      const x = actDq(n.inputs[0]);
      const end = toQ(n.outputs[0], (c) => c.opType === 'Flatten' || c.opType === 'Reshape');
      if (!x || !end) continue;
      const [, ys, yzp] = end.q.inputs;
      const y = end.q.outputs[0];
      let out = end.chain.length ? names.take(`${n.outputs[0]}_quantized`) : y;
      const list = [
        makeNode(
          'QLinearGlobalAveragePool',
          [x.int, x.scale, x.zp, ys, yzp],
          [out],
          { channels_last: 0 },
          { name: n.name, domain: 'com.microsoft' },
        ),
      ];
      end.chain.forEach((c, k) => {
        const o = k === end.chain.length - 1 ? y : names.take(`${c.outputs[0]}_quantized`);
        list.push(makeNode(c.opType, [out, ...c.inputs.slice(1)], [o], { ...c.attrs }, { name: c.name }));
        out = o;
      });
      replace.set(n, list);
      for (const c of [...end.chain, end.q]) drop.add(c);
    }
  }
  g.nodes = g.nodes.flatMap((n) => replace.get(n) ?? (drop.has(n) ? [] : [n]));
  // DequantizeLinear nodes nothing reads any more
  for (;;) {
    const read = new Set([...g.nodes.flatMap((n) => n.inputs), ...outputs]);
    const keep = g.nodes.filter((n) => n.opType !== 'DequantizeLinear' || read.has(n.outputs[0]));
    if (keep.length === g.nodes.length) break;
    g.nodes = keep;
  }
  pruneInitializers(g);
  if (!g.meta.opsetImports.some((o) => o.domain === 'com.microsoft'))
    g.meta = { ...g.meta, opsetImports: [...g.meta.opsetImports, { domain: 'com.microsoft', version: 1 }] };
  return g;
}

/**
 * A simulated run of the small CNN under `cfg` without an engine: activation ranges fixed
 * (signed tensors [-3, 3], non-negative ones [0, 4]), so unit tests can export it.
 */
export function engineFreeRun(cfg: ExperimentConfig): QuantizedRun {
  const graph = foldBatchNorm(smallCnn()).graph;
  const points = findQuantPoints(graph, ALL_PLACEMENT);
  const weights = quantizeWeights(graph, points, cfg);
  const relu = new Set(graph.nodes.filter((n) => n.opType === 'Relu').map((n) => n.outputs[0]));
  const activations: ActivationQuant[] = points.activations
    .filter((p) => includeActivation(p, cfg))
    .map((point) => {
      const [min, max] = relu.has(point.tensor) ? [0, 4] : [-3, 3];
      const qparams = computeQParams(
        { min: Float32Array.of(min), max: Float32Array.of(max) },
        activationSpec(cfg, min >= 0),
      );
      return { point, qparams, min, max };
    });
  return quantizedRun(cfg, graph, weights, activations);
}

/** Every tensor of a graph renamed (nodes too): a parent "exported by another tool". `map` gets old → new. */
export function renameAll(src: Graph, prefix = 'x', map = new Map<string, string>()): Graph {
  const g = cloneGraph(src, { shareInitializers: true });
  let k = 0;
  const rn = (t: string) => {
    if (!t) return t;
    let m = map.get(t);
    if (!m) map.set(t, (m = `${prefix}${k++}`));
    return m;
  };
  g.inputs = g.inputs.map((v) => ({ ...v, name: rn(v.name) }));
  g.outputs = g.outputs.map((v) => ({ ...v, name: rn(v.name) }));
  g.initializers = new Map([...g.initializers].map(([n, t]) => [rn(n), { ...t, name: rn(n) }] as const));
  g.valueInfo = new Map([...g.valueInfo].map(([n, v]) => [rn(n), { ...v, name: rn(n) }] as const));
  g.nodes = g.nodes.map((n, i) => ({ ...n, name: `node_${i}`, inputs: n.inputs.map(rn), outputs: n.outputs.map(rn) }));
  return g;
}

/** Fixed, distinct activation ranges for every tensor of the folded small CNN. */
export function smallRanges(): Ranges {
  const f = foldBatchNorm(smallCnn()).graph;
  const ranges: Ranges = new Map([['input', { min: -2.1, max: 2.4 }]]);
  f.nodes.forEach((n, i) => n.outputs.forEach((o) => ranges.set(o, { min: -1.5 - 0.1 * i, max: 2 + 0.2 * i })));
  return ranges;
}
