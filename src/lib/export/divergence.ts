/**
 * Where a deployment stops computing what a simulation computed: both models are run on
 * the same few images, every quantized tensor is read back as integer codes (q − z), and
 * the tensors are compared in integer steps in network order. The first tensor whose codes
 * differ by more than one step names the diverging layer (the op that writes it), with the
 * reasons that can be told from the two models:
 * - bias rounded to int32: the deployed int32 bias, read back from the deployed file, sits
 *   half an output step or more from the bias the reference adds (or a channel's bias did
 *   not fit an int32 and its weight scale had to grow);
 * - a clip the kernel applies differently: codes outside the simulated integer range (the
 *   kernels saturate to the 8-bit type, e.g. −128 where TensorRT's range stops at −127);
 * - a fusion the simulation did not model: QLinearGlobalAveragePool requantizes an integer
 *   sum (an absorbed ReLU6, an output quantizer added before a ReLU6 and QLinearAdd's
 *   formula change no value, so they are not named);
 * - an operator left in float: the layer runs in float on dequantized inputs;
 * - requantization rounding: one float32 rounding of acc·M instead of the simulation's float
 *   sums; when the layer's inputs already differed, the ±1-step differences of the layers
 *   before it have added up.
 * Reading codes keeps the deployed arithmetic: the deployed model gets a second
 * DequantizeLinear on each QuantizeLinear output as an extra model output, which leaves the
 * fused groups (DequantizeLinear → op → QuantizeLinear) as they were.
 *
 * Engine work (sessions) plus pure comparison; does not change the models it is given.
 */
import type { Engine, SessionOptions } from '../engine/types.ts';
import type { PreprocessSpec } from '../data/types.ts';
import { batches } from '../experiment/batches.ts';
import type { QuantizedRun } from '../experiment/types.ts';
import { type Graph, NameAllocator, cloneGraph, consumersOf, makeNode, makeValueInfo, producerOf } from '../onnx/ir.ts';
import { layerNames, displayName } from '../onnx/layer-names.ts';
import { serializeModel } from '../onnx/model.ts';
import { QDQ_SESSION_CONFIG } from '../onnx/fq-qdq.ts';
import { QpError } from '../util/errors.ts';
import { DEPLOY_EXACT_SESSION, type DeployExactModel } from './deploy-exact.ts';
import type { ActQuant, IntegerKernel, IntegerLayer, IntegerPlan } from './integer-plan.ts';
import type { IntegerQdqModel } from './integer-qdq.ts';

/** Codes of one tensor over the probed images (centered: q − z), in NCHW order. */
export type CodeMap = Map<string, Float32Array>;

export interface TensorComparison {
  tensor: string;
  /** the node that writes the tensor in the deployment (a Conv for an absorbed ReLU6) */
  layer: string;
  /** readable name of that layer */
  label: string;
  kernel: IntegerKernel | 'float' | 'model input';
  elements: number;
  /** elements whose codes differ */
  differing: number;
  /** largest |code difference| in integer steps */
  maxSteps: number;
  /** elements of the deployment outside the simulated integer range */
  outOfRange: number;
}

export interface DivergenceReason {
  kind: 'bias' | 'clip' | 'fusion' | 'float' | 'requantization';
  text: string;
}

export interface Divergence {
  /** every quantized tensor in network order */
  tensors: TensorComparison[];
  images: number;
  /** the first tensor whose codes differ by more than one step, with why */
  first?: TensorComparison & { reasons: DivergenceReason[] };
  /** the first tensor whose codes differ at all (where the differences start), with why */
  origin?: TensorComparison & { reasons: DivergenceReason[] };
}

/** Output name for a probe: ASCII, unique. */
const probeName = (names: NameAllocator, t: string) => names.take(`probe_${t.replace(/[^A-Za-z0-9_]/g, '_')}`);

/**
 * The fake-quant graph with the centered codes of each quantized tensor as extra outputs:
 * the Clip (or Min) of its Div → Round → Clip → Mul chain. Throws QpError INTERNAL when a
 * tensor has no such chain.
 */
export function simulationProbes(
  fq: Graph,
  tensors: readonly string[],
): { graph: Graph; outputs: Map<string, string> } {
  const g = cloneGraph(fq, { shareInitializers: true });
  const cons = consumersOf(g);
  const outputs = new Map<string, string>();
  for (const t of tensors) {
    const div = (cons.get(t) ?? []).find((n) => n.opType === 'Div' && n.inputs[0] === t);
    const round = div && (cons.get(div.outputs[0]) ?? []).find((n) => n.opType === 'Round');
    let clip = round && (cons.get(round.outputs[0]) ?? []).find((n) => n.opType === 'Clip' || n.opType === 'Max');
    if (clip?.opType === 'Max') clip = (cons.get(clip.outputs[0]) ?? []).find((n) => n.opType === 'Min');
    if (!clip) throw new QpError('INTERNAL', `The simulation has no fake-quant chain on "${t}".`);
    outputs.set(t, clip.outputs[0]);
    g.outputs.push(makeValueInfo(clip.outputs[0], null));
  }
  return { graph: g, outputs };
}

/**
 * The integer export with a second DequantizeLinear on each quantized tensor's codes as an
 * extra output (the value (q − z)·s; codes are recovered by dividing by s and rounding).
 */
export function deployedProbes(m: IntegerQdqModel): { graph: Graph; outputs: Map<string, string> } {
  const g = cloneGraph(m.graph, { shareInitializers: true });
  const names = new NameAllocator(g);
  const prod = producerOf(g);
  const outputs = new Map<string, string>();
  const extra = [];
  for (const [t, codes] of m.codes) {
    const q = prod.get(codes)!;
    const out = probeName(names, t);
    extra.push({
      after: q,
      node: makeNode(
        'DequantizeLinear',
        [codes, q.inputs[1], q.inputs[2]],
        [out],
        {},
        { name: names.take(`${out}_dq`) },
      ),
    });
    outputs.set(t, out);
    g.outputs.push(makeValueInfo(out, null));
  }
  const byAfter = new Map(extra.map((e) => [e.after, e.node] as const));
  g.nodes = g.nodes.flatMap((n) => (byAfter.has(n) ? [n, byAfter.get(n)!] : [n]));
  return { graph: g, outputs };
}

/** The deploy-exact graph with its code tensors as extra outputs. */
export function exactProbes(m: DeployExactModel): { graph: Graph; outputs: Map<string, string> } {
  const g = cloneGraph(m.graph, { shareInitializers: true });
  for (const c of m.codes.values()) g.outputs.push(makeValueInfo(c, null));
  return { graph: g, outputs: new Map(m.codes) };
}

/**
 * Runs `graph` on the crops and returns, per probed tensor, its codes over all images.
 * `scales` turns value outputs into codes (round(v / s)); without a scale the output is
 * taken as codes already.
 */
export async function fetchCodes(
  engine: Engine,
  probe: { graph: Graph; outputs: Map<string, string> },
  input: { crops: Uint8Array[]; spec: PreprocessSpec },
  opts: { scales?: Map<string, number>; session?: SessionOptions; batchSize?: number } = {},
): Promise<CodeMap> {
  const session = await engine.createSession(serializeModel(probe.graph), opts.session ?? {});
  const parts = new Map<string, Float32Array[]>();
  try {
    const fetches = [...probe.outputs.values()];
    for (const b of batches(input.crops, input.spec, opts.batchSize ?? 4)) {
      const out = await session.run({ [session.inputNames[0]]: b.tensor }, fetches);
      for (const [t, o] of probe.outputs) {
        const s = opts.scales?.get(t);
        // + 0 turns a −0 code into 0
        const data = Float32Array.from(out[o].data, s ? (v) => Math.round(v / s) + 0 : (v) => v + 0);
        parts.set(t, [...(parts.get(t) ?? []), data]);
      }
    }
  } finally {
    await session.release();
  }
  const codes: CodeMap = new Map();
  for (const [t, list] of parts) {
    const all = new Float32Array(list.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of list) {
      all.set(p, o);
      o += p.length;
    }
    codes.set(t, all);
  }
  return codes;
}

/** The deployment's view of every quantized tensor: its writer and its quantizer, in network order. */
export function quantizedTensors(
  plan: IntegerPlan,
  graph: Graph,
): { tensor: string; layer: IntegerLayer | undefined; writer: string; q: ActQuant }[] {
  const byOutput = new Map<string, IntegerLayer>();
  for (const l of plan.layers) if (l.output) byOutput.set(l.output.tensor, l);
  const prod = producerOf(graph);
  const layersByNode = new Map(plan.layers.map((l) => [l.node, l] as const));
  const all = new Map<string, ActQuant>(plan.activations);
  for (const l of plan.layers) if (l.insertedAt && l.output) all.set(l.insertedAt, l.output);
  const order = new Map<string, number>();
  graph.inputs.forEach((v, i) => order.set(v.name, -1 - i));
  graph.nodes.forEach((n, i) => n.outputs.forEach((o) => order.set(o, i)));
  /** The integer layer behind a tensor that a float Relu/Clip/Flatten/Reshape passes on unchanged in grid. */
  const behind = (tensor: string): IntegerLayer | undefined => {
    let t = tensor;
    for (let i = 0; i < 4; i++) {
      const p = prod.get(t);
      if (!p || !['Relu', 'Clip', 'Flatten', 'Reshape', 'Squeeze'].includes(p.opType)) return undefined;
      t = p.inputs[0];
      const l = byOutput.get(t);
      if (l?.insertedAt === t) return l;
    }
    return undefined;
  };
  return [...all]
    .sort((a, b) => (order.get(a[0]) ?? 0) - (order.get(b[0]) ?? 0))
    .map(([tensor, q]) => {
      const layer = byOutput.get(tensor) ?? behind(tensor) ?? layersByNode.get(prod.get(tensor)?.name ?? '');
      return { tensor, layer, writer: layer?.node ?? prod.get(tensor)?.name ?? '', q };
    });
}

/** Compares two code maps tensor by tensor (pure). */
export function compareCodes(
  reference: CodeMap,
  deployed: CodeMap,
  tensors: ReturnType<typeof quantizedTensors>,
  labels: Map<string, string>,
): TensorComparison[] {
  return tensors
    .filter((t) => reference.has(t.tensor) && deployed.has(t.tensor))
    .map(({ tensor, layer, writer, q }) => {
      const a = reference.get(tensor)!;
      const b = deployed.get(tensor)!;
      if (a.length !== b.length)
        throw new QpError(
          'INTERNAL',
          `"${tensor}" has ${a.length} elements in one model and ${b.length} in the other.`,
        );
      let differing = 0;
      let maxSteps = 0;
      let outOfRange = 0;
      const lo = q.qmin - q.zeroPoint;
      const hi = q.qmax - q.zeroPoint;
      for (let i = 0; i < a.length; i++) {
        const d = Math.abs(a[i] - b[i]);
        if (d > 0) differing++;
        if (d > maxSteps) maxSteps = d;
        if (b[i] < lo || b[i] > hi) outOfRange++;
      }
      return {
        tensor,
        layer: writer,
        label: labels.get(writer) ?? writer,
        kernel: layer?.kernel ?? (writer ? 'float' : 'model input'),
        elements: a.length,
        differing,
        maxSteps,
        outOfRange,
      };
    });
}

/** The deployed int32 bias of a layer as the deployed file holds it: codes · scale per channel. */
function deployedBias(g: Graph, node: string): Float32Array | undefined {
  const n = g.nodes.find((x) => x.name === node);
  const dq = n?.inputs[2] ? producerOf(g).get(n.inputs[2]) : undefined;
  if (!dq || dq.opType !== 'DequantizeLinear') return undefined;
  const codes = g.initializers.get(dq.inputs[0]);
  const scale = g.initializers.get(dq.inputs[1]);
  if (!codes || !scale || codes.dtype !== 'int32') return undefined;
  return Float32Array.from(codes.data as Int32Array, (v, c) => v * Number(scale.data[scale.data.length === 1 ? 0 : c]));
}

/** Output steps one input step can move an integer Conv/MatMul output by: max |w − z_w|·M over channels. */
function amplification(layer: IntegerLayer): number | undefined {
  const w = layer.weight;
  const x = layer.inputs[0];
  if (!w || !x || !layer.output) return undefined;
  const per = w.qparams.axis >= 0;
  const C = w.qparams.scale.length;
  const inner = per ? w.dims.slice(w.qparams.axis + 1).reduce((a, b) => a * b, 1) : w.codes.length;
  let worst = 0;
  for (let i = 0; i < w.codes.length; i++) {
    const c = per ? Math.floor(i / inner) % C : 0;
    const m = (x.scale * w.qparams.scale[c]) / layer.output.scale;
    worst = Math.max(worst, Math.abs(w.codes[i] - w.qparams.zeroPoint[c]) * m);
  }
  return worst;
}

/** Why a layer itself computes differently (no upstream difference involved). */
function intrinsicReasons(
  t: TensorComparison,
  layer: IntegerLayer | undefined,
  deployed: Graph,
  reference: 'simulation' | 'deploy-exact',
): DivergenceReason[] {
  const reasons: DivergenceReason[] = [];
  const out = layer?.output;
  if (layer?.bias && out) {
    const dep = deployedBias(deployed, layer.node);
    const ref =
      reference === 'simulation'
        ? layer.bias.float
        : Float32Array.from(layer.bias.codes, (v, c) => v * layer.bias!.scale[c]);
    if (dep) {
      let worst = 0;
      let at = 0;
      for (let c = 0; c < ref.length; c++) {
        const steps = Math.abs(ref[c] - dep[c]) / out.scale;
        if (steps > worst) [worst, at] = [steps, c];
      }
      if (worst >= 0.5)
        reasons.push({
          kind: 'bias',
          text: `bias rounded to int32: channel ${at}'s deployed bias ${dep[at].toPrecision(6)} is ${worst.toFixed(2)} output steps from the ${reference === 'simulation' ? 'simulated' : 'expected'} ${ref[at].toPrecision(6)}`,
        });
    }
    if (layer.rescaled?.length)
      reasons.push({
        kind: 'bias',
        text: `bias rounded to int32: ${layer.rescaled.length} channel(s) (e.g. ${layer.rescaled[0].channel}) had a bias too large for an int32 at scale s_x·s_w, so their weight scale grew from ${layer.rescaled[0].from.toExponential(2)} to ${layer.rescaled[0].to.toExponential(2)} and their weights were re-rounded`,
      });
  }
  if (t.outOfRange > 0 && out && (out.qmin > 0 || out.qmax < 255))
    reasons.push({
      kind: 'clip',
      text: `a clip the kernel applies differently: ${t.outOfRange} value(s) saturate at the 8-bit type's limit, outside the simulated range [${out.qmin - out.zeroPoint}, ${out.qmax - out.zeroPoint}]`,
    });
  const kernel = layer?.kernel ?? 'float';
  if (kernel === 'float') {
    reasons.push({
      kind: 'float',
      text: `an operator left in float: ${t.layer} runs in float on dequantized inputs${layer?.reason ? ` (${layer.reason})` : ''}`,
    });
    return reasons;
  }
  if (reference === 'simulation') {
    if (kernel === 'QLinearConv' || kernel === 'QLinearMatMul')
      reasons.push({
        kind: 'requantization',
        text: `requantization rounding: the ${kernel} adds the int32 bias to the exact int32 sum and rounds float32(sum · M) once, where the simulation rounds a float32 sum of dequantized products plus the float bias`,
      });
    else if (kernel === 'QLinearGlobalAveragePool')
      reasons.push({
        kind: 'fusion',
        text: 'a fusion the simulation did not model: QLinearGlobalAveragePool sums the integer codes and requantizes the sum by s_x / (s_y·H·W), where the simulation averages dequantized values in float',
      });
  }
  return reasons;
}

/**
 * Why the first diverging tensor diverges (see module header). `reference` says what the
 * compared simulation adds as bias: the float bias (MQBench's simulation) or the plan's
 * int32 bias (deploy-exact). A layer of its own (bias, clip) comes first; when its inputs
 * already differed, the ±1-step differences of earlier layers, amplified by its weights,
 * come before the layer's own kernel differences.
 */
export function explain(
  first: TensorComparison,
  all: readonly TensorComparison[],
  plan: IntegerPlan,
  deployed: Graph,
  reference: 'simulation' | 'deploy-exact',
): DivergenceReason[] {
  const layer = plan.layers.find((l) => l.node === first.layer);
  const own = intrinsicReasons(first, layer, deployed, reference);
  const strong = own.filter((r) => r.kind === 'bias' || r.kind === 'clip');
  const index = all.indexOf(first);
  const inputs = (layer?.inputs ?? [])
    .map((q) => all.slice(0, index).find((t) => t.tensor === q.tensor))
    .filter((t): t is TensorComparison => !!t && t.differing > 0);
  if (!inputs.length) return own;
  const origin = all.slice(0, index).find((t) => t.differing > 0)!;
  const gain = layer && amplification(layer);
  const upstream: DivergenceReason = {
    kind: 'requantization',
    text: `requantization rounding upstream: its input ${inputs[0].tensor} already differs on ${inputs[0].differing} value(s) by up to ${inputs[0].maxSteps} step(s) (first differences at ${origin.label}, ${origin.tensor})${gain ? `, and its weights turn one input step into up to ${gain.toFixed(1)} output steps` : ''}`,
  };
  return [...strong, upstream, ...own.filter((r) => !strong.includes(r))];
}

export interface DivergenceInput {
  engine: Engine;
  run: QuantizedRun;
  deployed: IntegerQdqModel;
  /** the simulation to compare with: MQBench's (the run's fake-quant graph) or the deploy-exact graph */
  reference: { kind: 'simulation' } | { kind: 'deploy-exact'; model: DeployExactModel };
  /** images (from the start of the evaluation split), default 8 */
  images?: number;
}

/** Compares a simulation with the deployment layer by layer (see module header). */
export async function findDivergence(input: DivergenceInput): Promise<Divergence> {
  const { engine, run, deployed } = input;
  const images = Math.min(input.images ?? 8, run.evaluation.crops.length);
  const data = { crops: run.evaluation.crops.slice(0, images), spec: run.evaluation.spec };
  const tensors = quantizedTensors(deployed.plan, run.graph);
  const names = layerNames(run.graph);
  const labels = new Map([...names].map(([k, v]) => [k, displayName(v, k)] as const));
  const scales = new Map(tensors.map((t) => [t.tensor, t.q.scale] as const));
  const dep = await fetchCodes(engine, deployedProbes(deployed), data, { scales });
  let ref: CodeMap;
  if (input.reference.kind === 'simulation') {
    const simulated = tensors
      .filter((t) => run.activations.some((a) => a.point.tensor === t.tensor))
      .map((t) => t.tensor);
    ref = await fetchCodes(engine, simulationProbes(run.evaluated, simulated), data, {
      session: { config: QDQ_SESSION_CONFIG },
    });
  } else {
    ref = await fetchCodes(engine, exactProbes(input.reference.model), data, { session: DEPLOY_EXACT_SESSION });
  }
  const compared = compareCodes(ref, dep, tensors, labels);
  const why = (t: TensorComparison | undefined) =>
    t && { ...t, reasons: explain(t, compared, deployed.plan, deployed.graph, input.reference.kind) };
  return {
    tensors: compared,
    images,
    first: why(compared.find((t) => t.maxSteps > 1)),
    origin: why(compared.find((t) => t.differing > 0)),
  };
}
