/**
 * The fake-quant graph for WebGPU, the same numbers without `Round`: onnxruntime's WebGPU
 * provider has no Round kernel (nor a QuantizeLinear one), so each Round of the element-wise
 * chain that insertFakeQuant builds would run on the CPU with a copy each way (65 of them in
 * MobileNet-V2: bench:webgpu counts them).
 *
 * Each Round → clamp to integer bounds (Clip(lo, hi) per tensor, Max(lo) → Min(hi) per
 * channel) becomes clamp → the steps of quant/round-floor.ts (Floor, Sub, Add, Greater,
 * Equal, Mul, Where), which compute round-half-to-even exactly for any value within the
 * bounds; clamping first is exact because rounding and clamping to whole numbers commute.
 * So on a CPU engine the graph gives the element-wise chain's outputs value for value (a
 * quantized −0 becomes +0, as with QuantizeLinear → DequantizeLinear), and on WebGPU every
 * node has a GPU kernel. A Round that is not clamped this way (a model's own) stays.
 * Returns a new graph; never mutates its input. Must not choose quantization parameters.
 */
import { ROUND_CONSTANTS, ROUND_FLOOR_LIMIT, ROUND_STEPS } from '../quant/round-floor.ts';
import {
  type Graph,
  type Node,
  NameAllocator,
  cloneGraph,
  consumersOf,
  makeNode,
  makeTensor,
  scalarOperand,
} from './ir.ts';

export interface RoundFreeReport {
  /** Round nodes replaced by the Floor-based steps */
  replaced: number;
  /** Round nodes left as they are (not followed by a clamp to whole-number bounds) */
  kept: number;
}

/** Whether the initializer holds whole numbers within ±ROUND_FLOOR_LIMIT (the steps' exact range). */
function wholeBounds(g: Graph, name: string | undefined): boolean {
  const t = name ? g.initializers.get(name) : undefined;
  if (!t || t.dtype !== 'float32' || t.data.length === 0) return false;
  for (const v of t.data as Float32Array) if (!Number.isInteger(v) || Math.abs(v) > ROUND_FLOOR_LIMIT) return false;
  return true;
}

/** A graph computing the same as `fqGraph` with its clamped Rounds replaced (see header). */
export function fakeQuantWithoutRound(fqGraph: Graph): { graph: Graph; report: RoundFreeReport } {
  const g = cloneGraph(fqGraph, { shareInitializers: true });
  const names = new NameAllocator(g);
  const outputs = new Set(g.outputs.map((o) => o.name));
  const cons = consumersOf(g);
  const report: RoundFreeReport = { replaced: 0, kept: 0 };
  const only = (tensor: string, op: string): Node | undefined => {
    const c = cons.get(tensor);
    return !outputs.has(tensor) && c?.length === 1 && c[0].opType === op && c[0].domain === '' ? c[0] : undefined;
  };
  let constants: Record<string, string> | undefined;
  const constant = (key: string) => {
    constants ??= Object.fromEntries(
      Object.entries(ROUND_CONSTANTS).map(([k, v]) => {
        const n = names.take(`fq_round_${k}`);
        g.initializers.set(n, makeTensor(n, [], Float32Array.of(v)));
        return [k, n];
      }),
    );
    return constants[key];
  };

  const replace = new Map<Node, Node[]>();
  const drop = new Set<Node>();
  for (const round of g.nodes) {
    if (round.opType !== 'Round' || round.domain !== '') continue;
    const x = round.inputs[0];
    const clip = only(round.outputs[0], 'Clip');
    const max = clip ? undefined : only(round.outputs[0], 'Max');
    const min = max && max.inputs[0] === round.outputs[0] ? only(max.outputs[0], 'Min') : undefined;
    let clamp: Node[];
    if (clip && clip.inputs[0] === round.outputs[0]) {
      const lo = scalarOperand(g, clip, 1, 'min');
      const hi = scalarOperand(g, clip, 2, 'max');
      const whole = (v: number | undefined) =>
        v !== undefined && Number.isInteger(v) && Math.abs(v) <= ROUND_FLOOR_LIMIT;
      if (!whole(lo) || !whole(hi)) {
        report.kept++;
        continue;
      }
      clamp = [{ ...clip, inputs: [x, ...clip.inputs.slice(1)], outputs: [names.take(`${clip.outputs[0]}_clamped`)] }];
      drop.add(clip);
    } else if (
      max &&
      min &&
      min.inputs[0] === max.outputs[0] &&
      wholeBounds(g, max.inputs[1]) &&
      wholeBounds(g, min.inputs[1])
    ) {
      const mx = names.take(`${max.outputs[0]}_clamped`);
      clamp = [
        { ...max, inputs: [x, max.inputs[1]], outputs: [mx] },
        { ...min, inputs: [mx, min.inputs[1]], outputs: [names.take(`${min.outputs[0]}_clamped`)] },
      ];
      drop.add(max).add(min);
    } else {
      report.kept++;
      continue;
    }
    const last = clamp[clamp.length - 1];
    const result = (clip ?? min)!.outputs[0];
    const tensor = new Map<string, string>([['c', last.outputs[0]]]);
    const steps = ROUND_STEPS.map((s, i) => {
      const out = i === ROUND_STEPS.length - 1 ? result : names.take(`${result}_${s.output}`);
      tensor.set(s.output, out);
      const inputs = s.inputs.map((n) => tensor.get(n) ?? constant(n));
      return makeNode(s.op, inputs, [out], {}, { name: names.take(`${last.name}/Round/${s.output}`) });
    });
    replace.set(round, [...clamp, ...steps]);
    report.replaced++;
  }
  g.nodes = g.nodes.flatMap((n) => replace.get(n) ?? (drop.has(n) ? [] : [n]));
  return { graph: g, report };
}
