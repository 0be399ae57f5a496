/**
 * Faster fake-quant graphs for evaluation: fold the scale of each per-tensor activation
 * quantizer into the neighbouring convolutions, so Div → Round → Clip → Mul shrinks to
 * Round → Clip where the graph allows it.
 *
 * Why: the four element-wise passes over every quantized activation cost a large share of
 * an FP32 pass on wasm (docs/performance.md). With t = act(Conv(x; W, B)) and
 * act ∈ {Relu, Clip(lo, hi), none}:
 *   t / s = act'(Conv(x; W/s, B/s))        (Relu commutes with s > 0; Clip bounds become lo/s, hi/s)
 *   Conv(c · s; V, b) = Conv(c; V·s, b)    (convolution is linear in its input; zero padding stays 0)
 * The result is not bit-exact with insertFakeQuant's form (weights and sums round
 * differently at the last float bit, so a value within ~1 ulp of a .5 tie can round the
 * other way: rare single-step flips); the exact form stays the default of insertFakeQuant
 * for golden tests, and bench:perf measures agreement between the two (docs/performance.md).
 * Returns a new graph; never mutates its input.
 */
import {
  type Graph,
  type Node,
  NameAllocator,
  cloneGraph,
  consumersOf,
  floatScalar,
  makeTensor,
  producerOf,
} from './ir.ts';

export interface FoldReport {
  /** quantizers whose Div was folded into the producing Conv */
  producerFolds: number;
  /** quantizers whose Mul was folded into the consuming Convs */
  consumerFolds: number;
  /** per-tensor quantizers seen */
  quantizers: number;
}

/**
 * The folded graph of a graph made by insertFakeQuant (the chains it inserts are found by
 * their shape: Div(t, s) → Round → Clip → Mul(·, s) with the same scalar initializer s > 0).
 */
export function foldFakeQuantScales(fqGraph: Graph): { graph: Graph; report: FoldReport } {
  const g = cloneGraph(fqGraph, { shareInitializers: true });
  const names = new NameAllocator(g);
  const outputs = new Set(g.outputs.map((o) => o.name));
  const report: FoldReport = { producerFolds: 0, consumerFolds: 0, quantizers: 0 };
  const removed = new Set<Node>();

  /** Give node input `k` its own copy of the initializer, scaled (÷ div, × mul). */
  const scaleInput = (n: Node, k: number, mul: number, div: number) => {
    const src = g.initializers.get(n.inputs[k])!;
    const name = names.take(`${n.inputs[k]}_fold`);
    const data = new Float32Array(src.data.length);
    for (let i = 0; i < data.length; i++) data[i] = (Number(src.data[i]) * mul) / div;
    g.initializers.set(name, makeTensor(name, [...src.dims], data));
    n.inputs[k] = name;
  };
  const isFloatInit = (name: string | undefined) => !!name && g.initializers.get(name)?.dtype === 'float32';

  for (const div of [...g.nodes]) {
    if (div.opType !== 'Div' || div.domain !== '') continue;
    const s = floatScalar(g, div.inputs[1]);
    if (s === undefined || !(s > 0)) continue;
    const cons = consumersOf(g);
    const round = cons.get(div.outputs[0]);
    if (round?.length !== 1 || round[0].opType !== 'Round') continue;
    const clip = cons.get(round[0].outputs[0]);
    if (clip?.length !== 1 || clip[0].opType !== 'Clip') continue;
    const mul = cons.get(clip[0].outputs[0]);
    if (mul?.length !== 1 || mul[0].opType !== 'Mul' || mul[0].inputs[1] !== div.inputs[1]) continue;
    report.quantizers++;
    const t = div.inputs[0];
    const prod = producerOf(g);

    // Producer side: t = [Relu | Clip](Conv(...)) or t = Conv(...), each link single-use.
    let act = prod.get(t);
    let conv: Node | undefined = act;
    if (act && (act.opType === 'Relu' || act.opType === 'Clip')) conv = prod.get(act.inputs[0]);
    else act = undefined;
    const single = (x: string) => (cons.get(x)?.length ?? 0) === 1 && !outputs.has(x);
    const actBoundsOk =
      !act ||
      act.opType === 'Relu' ||
      [1, 2].every((k) => !act!.inputs[k] || floatScalar(g, act!.inputs[k]) !== undefined);
    if (
      conv &&
      conv.opType === 'Conv' &&
      conv.domain === '' &&
      isFloatInit(conv.inputs[1]) &&
      (!conv.inputs[2] || isFloatInit(conv.inputs[2])) &&
      single(t) &&
      (!act || single(conv.outputs[0])) &&
      actBoundsOk
    ) {
      scaleInput(conv, 1, 1, s);
      if (conv.inputs[2]) scaleInput(conv, 2, 1, s);
      if (act?.opType === 'Clip') {
        for (const k of [1, 2]) {
          if (!act.inputs[k]) continue;
          const v = floatScalar(g, act.inputs[k])! / s;
          const name = names.take(`${act.inputs[k]}_fold`);
          g.initializers.set(name, makeTensor(name, [], Float32Array.of(v)));
          act.inputs[k] = name;
        }
      }
      round[0].inputs[0] = t;
      removed.add(div);
      report.producerFolds++;
    }

    // Consumer side: every reader of the Mul's output is a Conv reading it as data input.
    const y = mul[0].outputs[0];
    const readers = cons.get(y) ?? [];
    if (
      readers.length > 0 &&
      !outputs.has(y) &&
      readers.every(
        (r) =>
          r.opType === 'Conv' &&
          r.domain === '' &&
          r.inputs[0] === y &&
          r.inputs.indexOf(y, 1) < 0 &&
          isFloatInit(r.inputs[1]),
      )
    ) {
      for (const r of readers) {
        scaleInput(r, 1, s, 1);
        r.inputs[0] = clip[0].outputs[0];
      }
      removed.add(mul[0]);
      report.consumerFolds++;
    }
  }
  g.nodes = g.nodes.filter((n) => !removed.has(n));
  // drop initializers nothing reads any more (the unscaled copies)
  const used = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const k of [...g.initializers.keys()])
    if (!used.has(k) && !g.inputs.some((v) => v.name === k)) g.initializers.delete(k);
  return { graph: g, report };
}
