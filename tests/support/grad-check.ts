/**
 * Finite-difference checks of the reconstruction's backward graphs: the quantized forward
 * graph rewritten into the function the straight-through estimator differentiates, smooth
 * around a base point. Not a test file itself.
 */
import type { FloatTensor } from '../../src/lib/engine/types.ts';
import { type Graph, makeNode, makeValueInfo } from '../../src/lib/onnx/ir.ts';
import { roundHalfToEven } from '../../src/lib/quant/round.ts';

/** Nodes whose output is piecewise in their input: frozen in the surrogate. */
const KINKED = new Set(['Relu', 'Clip', 'Min', 'Max']);

/** Tensors the surrogate freezes at: quantizers' u = x/s and every kinked node's input and output. */
export function probedTensors(g: Graph): string[] {
  return [
    ...new Set(
      g.nodes.flatMap((n) =>
        n.opType === 'Round' ? [n.inputs[0]] : KINKED.has(n.opType) ? [n.inputs[0], n.outputs[0]] : [],
      ),
    ),
  ];
}

/**
 * The function the straight-through estimator differentiates, linearised at its kinks, as
 * a graph: each quantizer's Round becomes u + δ and its Clip r·inside + clipped, with
 * δ = round(u) − u, the inside mask and the clipped codes frozen at the base point; Relu,
 * Clip, Min and Max of the network (with constant bounds) become x·m + k with the mask m
 * of where they pass the gradient and the values k where they do not, frozen likewise. What remains is smooth in
 * the weights and step sizes, so central differences resolve the gradient (an element on a
 * clip bound or at a Relu's zero would otherwise sit at a kink, where they average two slopes).
 * `base` holds probedTensors at the base point.
 */
export function surrogate(
  g: Graph,
  base: Record<string, FloatTensor>,
): { graph: Graph; feeds: Record<string, FloatTensor> } {
  const feeds: Record<string, FloatTensor> = {};
  const extra: string[] = [];
  const rounds = new Map(g.nodes.filter((n) => n.opType === 'Round').map((n) => [n.outputs[0], n]));
  const frozen = (n: (typeof g.nodes)[number], pass: Float32Array, rest: Float32Array, dims: number[]) => {
    const [m, k] = [`pass:${n.outputs[0]}`, `rest:${n.outputs[0]}`];
    extra.push(m, k);
    feeds[m] = { data: pass, dims };
    feeds[k] = { data: rest, dims };
    return [
      makeNode('Mul', [n.inputs[0], m], [`${n.outputs[0]}/kept`], {}, { name: `${n.name}/kept` }),
      makeNode('Add', [`${n.outputs[0]}/kept`, k], n.outputs, {}, { name: `${n.name}/surrogate` }),
    ];
  };
  const nodes = g.nodes.flatMap((n) => {
    if (n.opType === 'Round') {
      const u = base[n.inputs[0]];
      const d = `delta:${n.inputs[0]}`;
      extra.push(d);
      feeds[d] = { data: Float32Array.from(u.data, (v) => roundHalfToEven(v) - v), dims: u.dims };
      return [makeNode('Add', [n.inputs[0], d], n.outputs, {}, { name: `${n.name}/surrogate` })];
    }
    if (!KINKED.has(n.opType)) return [n];
    const y = base[n.outputs[0]];
    const round = n.opType === 'Clip' ? rounds.get(n.inputs[0]) : undefined;
    let pass: Float32Array;
    if (round) {
      // a quantizer's clip: inside where round(u) was not clipped (bounds included)
      const r = Float32Array.from(base[round.inputs[0]].data, roundHalfToEven);
      pass = Float32Array.from(y.data, (v, i) => (v === r[i] ? 1 : 0));
    } else {
      // the network's kinks pass the gradient strictly inside, as the backward rules (and
      // PyTorch's relu and hardtanh) do: an input exactly on a bound passes none
      const x = base[n.inputs[0]].data;
      const k = (i: number) => {
        const t = n.inputs[i];
        const init = t ? g.initializers.get(t) : undefined;
        return init ? Number(init.data[0]) : undefined;
      };
      const through =
        n.opType === 'Relu'
          ? (v: number) => v > 0
          : n.opType === 'Clip'
            ? (v: number) => (k(1) === undefined || v > k(1)!) && (k(2) === undefined || v < k(2)!)
            : n.opType === 'Min'
              ? (v: number) => v < k(1)!
              : (v: number) => v > k(1)!;
      pass = Float32Array.from(x, (v) => (through(v) ? 1 : 0));
    }
    return frozen(
      n,
      pass,
      Float32Array.from(y.data, (v, i) => (pass[i] ? 0 : v)),
      y.dims,
    );
  });
  return {
    graph: { ...g, nodes, inputs: [...g.inputs, ...extra.map((o) => makeValueInfo(o, null))] },
    feeds,
  };
}
