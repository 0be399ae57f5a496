/**
 * Cross-layer equalization and high-bias absorption (Nagel et al. 2019, "Data-Free
 * Quantization Through Weight Equalization and Bias Correction", DFQ), as pure graph
 * transforms applied after BN folding and before quantization.
 *
 * Why it exists: per-tensor weight quantization (SNPE, per-tensor asymmetric) loses most
 * of MobileNet-V2's depthwise channels, whose ranges differ by orders of magnitude.
 * For conv1 → ReLU → conv2, ReLU(x/s) = ReLU(x)/s for s > 0, so output channel i of
 * conv1 can be divided by s_i and input channel i of conv2 multiplied by s_i without
 * changing the network. With r1_i, r2_i the channels' max |w|, s_i = sqrt(r1_i / r2_i)
 * makes both ranges sqrt(r1_i·r2_i) (DFQ eq. 10); pairs are swept until the scales settle
 * because a depthwise conv belongs to two pairs.
 *
 * ReLU6 (Clip(0, 6)) breaks the equivariance: Clip(x/s, 0, 6) ≠ Clip(x, 0, 6)/s. Mode
 * 'clip' (the default) keeps the function exactly: Clip(x, 0, 6)/s_i = Min(Relu(x/s_i), 6/s_i),
 * so the Clip becomes Relu → Min with a per-channel bound tensor (ONNX Clip takes only
 * scalar bounds; Min broadcasts). Mode 'relu' (DFQ, AIMET, MQBench) replaces the Clip by
 * ReLU, which changes the float network wherever activations exceeded 6; mode 'keep'
 * leaves Clip(0, 6) in place, so channels scaled up (s_i < 1) clip early and channels
 * scaled down clip late (measured in docs/results.md: the network breaks).
 *
 * High-bias absorption (DFQ §4.1): a pre-activation channel x_i whose distribution
 * stays above c_i = max(0, β_i − 3γ_i) passes ReLU unchanged, so c_i can be subtracted
 * from conv1's bias and added through conv2 (b2 += Σ W2[:, i]·c_i): the activation
 * ranges shrink. DFQ reads β, γ from the BatchNorm; in a BN-folded model they are the
 * per-channel mean and standard deviation of conv1's output, which the caller measures
 * on calibration images (see absorbHighBias). Exact except at conv2's zero-padded
 * borders and for values below c_i (about 0.1% under a normal model).
 *
 * Must not: import ORT, DOM, Svelte or node: modules.
 */
import { QpError } from '../util/errors.ts';
import type { CleRelu6Mode } from '../config/names.ts';
import {
  cloneGraph,
  consumersOf,
  makeTensor,
  scalarOperand,
  type Graph,
  type Node,
  type TensorData,
} from '../onnx/ir.ts';

export type Relu6Mode = CleRelu6Mode;

/** conv1 → activation → conv2, by node name. */
export interface ClePair {
  first: string;
  act: string;
  second: string;
  /** conv1's output tensor (the pre-activation high-bias absorption measures) */
  preActivation: string;
  channels: number;
  /** the activation was Clip(0, 6) (ReLU6) rather than ReLU / Clip(0, ∞) */
  relu6: boolean;
  /** conv2 is depthwise (group = channels, one input channel per group) */
  depthwiseSecond: boolean;
  /** mode 'clip': the per-channel upper-bound initializer of the Min that replaced the Clip */
  clipBound?: string;
}

export interface CleOptions {
  relu6: Relu6Mode;
  /** at most this many sweeps over all pairs (default 50) */
  maxSweeps?: number;
  /** stop when every |log s_i| of a sweep is below this (default 1e-6) */
  tolerance?: number;
}

export interface CleResult {
  graph: Graph;
  pairs: ClePair[];
  sweeps: number;
  /** accumulated scale per pair (conv1 channel i divided, conv2 channel i multiplied) */
  scales: Float64Array[];
}

function initializer(g: Graph, name: string | undefined): TensorData | undefined {
  return name ? g.initializers.get(name) : undefined;
}

function isFloatInit(t: TensorData | undefined): t is TensorData {
  return !!t && (t.dtype === 'float32' || t.dtype === 'float64');
}

/** 'relu', 'relu6' or null for an activation node CLE can pass through. */
function activationKind(g: Graph, n: Node): 'relu' | 'relu6' | null {
  if (n.domain !== '') return null;
  if (n.opType === 'Relu') return 'relu';
  if (n.opType !== 'Clip') return null;
  const lo = scalarOperand(g, n, 1, 'min');
  const hi = scalarOperand(g, n, 2, 'max');
  if (lo !== 0) return null;
  if (!n.inputs[2] && n.attrs.max === undefined) return 'relu'; // no upper bound
  if (hi === Infinity) return 'relu';
  return hi === 6 ? 'relu6' : null; // unknown or other bounds: not handled
}

function convInfo(g: Graph, n: Node): { w: TensorData; group: number } | null {
  if (n.opType !== 'Conv' || n.domain !== '') return null;
  const w = initializer(g, n.inputs[1]);
  if (!isFloatInit(w) || w.dims.length < 3) return null;
  if (n.inputs[2] && !isFloatInit(initializer(g, n.inputs[2]))) return null;
  const group = typeof n.attrs.group === 'number' ? n.attrs.group : 1;
  return { w, group };
}

/**
 * Every Conv → (Relu | Clip(0,6) | Clip(0,∞)) → Conv chain where each tensor has one
 * consumer, the weights and biases are initializers used only there, and conv2 is a
 * plain (group 1) or depthwise conv. Other chains are left alone.
 */
export function findClePairs(g: Graph): ClePair[] {
  const consumers = consumersOf(g);
  const outputs = new Set(g.outputs.map((o) => o.name));
  const only = (t: string): Node | undefined => {
    const c = consumers.get(t);
    return c && c.length === 1 && !outputs.has(t) ? c[0] : undefined;
  };
  const sharedInit = (n: Node) => n.inputs.slice(1).some((t) => t && (consumers.get(t)?.length ?? 0) > 1);
  const pairs: ClePair[] = [];
  for (const c1 of g.nodes) {
    const i1 = convInfo(g, c1);
    if (!i1 || sharedInit(c1)) continue;
    const act = only(c1.outputs[0]);
    if (!act) continue;
    const kind = activationKind(g, act);
    if (!kind) continue;
    const c2 = only(act.outputs[0]);
    if (!c2 || c2.inputs[0] !== act.outputs[0] || sharedInit(c2)) continue;
    const i2 = convInfo(g, c2);
    if (!i2) continue;
    const channels = i1.w.dims[0];
    const depthwise = i2.group === channels && i2.w.dims[1] === 1 && i2.w.dims[0] === channels;
    if (!(i2.group === 1 && i2.w.dims[1] === channels) && !depthwise) continue;
    pairs.push({
      first: c1.name,
      act: act.name,
      second: c2.name,
      preActivation: c1.outputs[0],
      channels,
      relu6: kind === 'relu6',
      depthwiseSecond: depthwise,
    });
  }
  return pairs;
}

/** Float64 working copies of the weights and biases CLE rewrites, written back once. */
class Params {
  private readonly arrays = new Map<string, Float64Array>();
  constructor(private readonly g: Graph) {}

  get(name: string): Float64Array {
    let a = this.arrays.get(name);
    if (!a) {
      a = Float64Array.from(this.g.initializers.get(name)!.data as Float32Array);
      this.arrays.set(name, a);
    }
    return a;
  }

  /** Writes new float32 initializers (the input graph's arrays are never touched). */
  commit(): void {
    for (const [name, a] of this.arrays) {
      const t = this.g.initializers.get(name)!;
      this.g.initializers.set(name, { name, dtype: 'float32', dims: [...t.dims], data: Float32Array.from(a) });
    }
  }
}

function nodeByName(g: Graph): Map<string, Node> {
  return new Map(g.nodes.map((n) => [n.name, n]));
}

/** max |W1[i, …]| per output channel i. */
function outRanges(w: Float64Array, channels: number): Float64Array {
  const per = w.length / channels;
  const r = new Float64Array(channels);
  for (let i = 0; i < channels; i++) {
    let m = 0;
    for (let k = i * per; k < (i + 1) * per; k++) m = Math.max(m, Math.abs(w[k]));
    r[i] = m;
  }
  return r;
}

/** max |W2[:, i, …]| per input channel i (depthwise: W2[i, 0, …]). */
function inRanges(w: Float64Array, dims: readonly number[], channels: number, depthwise: boolean): Float64Array {
  if (depthwise) return outRanges(w, channels);
  const spatial = w.length / (dims[0] * dims[1]);
  const r = new Float64Array(channels);
  for (let o = 0; o < dims[0]; o++) {
    for (let i = 0; i < channels; i++) {
      const base = (o * channels + i) * spatial;
      for (let k = 0; k < spatial; k++) r[i] = Math.max(r[i], Math.abs(w[base + k]));
    }
  }
  return r;
}

function scaleOut(w: Float64Array, channels: number, f: (i: number) => number): void {
  const per = w.length / channels;
  for (let i = 0; i < channels; i++) {
    const s = f(i);
    for (let k = i * per; k < (i + 1) * per; k++) w[k] *= s;
  }
}

function scaleIn(
  w: Float64Array,
  dims: readonly number[],
  channels: number,
  depthwise: boolean,
  f: (i: number) => number,
): void {
  if (depthwise) return scaleOut(w, channels, f);
  const spatial = w.length / (dims[0] * dims[1]);
  for (let o = 0; o < dims[0]; o++) {
    for (let i = 0; i < channels; i++) {
      const s = f(i);
      const base = (o * channels + i) * spatial;
      for (let k = 0; k < spatial; k++) w[base + k] *= s;
    }
  }
}

/**
 * Cross-layer equalization of every pair findClePairs finds. Returns a new graph (the
 * input graph and its arrays are untouched); with relu6 'relu' the Clip(0, 6) of each
 * equalized pair becomes a Relu. Float math in float64, stored as float32.
 */
export function equalize(g: Graph, opts: CleOptions): CleResult {
  const out = cloneGraph(g, { shareInitializers: true });
  const pairs = findClePairs(out);
  const nodes = nodeByName(out);
  const params = new Params(out);
  const maxSweeps = opts.maxSweeps ?? 50;
  const tol = opts.tolerance ?? 1e-6;
  const scales = pairs.map((p) => new Float64Array(p.channels).fill(1));
  let sweeps = 0;
  for (; sweeps < maxSweeps;) {
    sweeps++;
    let worst = 0;
    pairs.forEach((p, pi) => {
      const c1 = nodes.get(p.first)!;
      const c2 = nodes.get(p.second)!;
      const w1 = params.get(c1.inputs[1]);
      const w2 = params.get(c2.inputs[1]);
      const dims2 = out.initializers.get(c2.inputs[1])!.dims;
      const r1 = outRanges(w1, p.channels);
      const r2 = inRanges(w2, dims2, p.channels, p.depthwiseSecond);
      const s = new Float64Array(p.channels);
      for (let i = 0; i < p.channels; i++) {
        // a dead channel (all-zero weights on either side) has nothing to balance
        s[i] = r1[i] > 0 && r2[i] > 0 ? Math.sqrt(r1[i] / r2[i]) : 1;
        worst = Math.max(worst, Math.abs(Math.log(s[i])));
        scales[pi][i] *= s[i];
      }
      scaleOut(w1, p.channels, (i) => 1 / s[i]);
      if (c1.inputs[2]) scaleOut(params.get(c1.inputs[2]), p.channels, (i) => 1 / s[i]);
      scaleIn(w2, dims2, p.channels, p.depthwiseSecond, (i) => s[i]);
    });
    if (worst < tol) break;
  }
  params.commit();
  if (opts.relu6 !== 'keep') {
    pairs.forEach((p, pi) => {
      if (!p.relu6) return;
      const act = nodes.get(p.act)!;
      act.opType = 'Relu';
      act.inputs = [act.inputs[0]];
      act.attrs = {};
      delete act.attrTypes;
      delete act.rawAttrs;
      if (opts.relu6 === 'clip') splitClip(out, act, p, scales[pi]);
    });
  }
  return { graph: out, pairs, sweeps, scales };
}

/**
 * Turns the (already Relu) activation of an equalized ReLU6 pair into Relu → Min(6/s_i):
 * the Relu writes a new tensor and the Min, inserted right after it, writes the tensor
 * conv2 reads, so quantization points (conv2's input) stay where they were.
 */
function splitClip(g: Graph, act: Node, p: ClePair, s: Float64Array): void {
  const rank = g.initializers.get(g.nodes.find((n) => n.name === p.first)!.inputs[1])!.dims.length;
  const bound = `${act.name}__cle_bound`;
  const bounds = Array.from(s, (si) => 6 / si);
  g.initializers.set(bound, makeTensor(bound, [p.channels, ...new Array<number>(rank - 2).fill(1)], bounds));
  const target = act.outputs[0];
  const relu = `${target}__cle_relu`;
  act.outputs = [relu];
  const min: Node = {
    name: `${act.name}__cle_min`,
    opType: 'Min',
    domain: '',
    inputs: [relu, bound],
    outputs: [target],
    attrs: {},
  };
  g.nodes.splice(g.nodes.indexOf(act) + 1, 0, min);
  p.clipBound = bound;
}

/** Per-channel mean and standard deviation of a pre-activation tensor. */
export interface ChannelDistribution {
  mean: ArrayLike<number>;
  std: ArrayLike<number>;
}

export interface AbsorbResult {
  graph: Graph;
  /** c per pair that absorbed (pairs whose activation is ReLU now), by conv1 name */
  absorbed: Map<string, Float64Array>;
}

/**
 * High-bias absorption for the pairs whose activation is a ReLU (after equalize with
 * relu6 'relu' or 'clip'; a remaining Clip(0, 6) is skipped). With a per-channel Min
 * bound M_i ('clip'), Min(Relu(x), M) − c = Min(Relu(x − c), M − c) for x ≥ c, so the
 * bound drops by c_i too (c_i ≤ M_i). c_i = max(0, mean_i − k·std_i) of conv1's output channel i (k = 3, DFQ);
 * b1_i −= c_i; b2_o += Σ_i Σ_spatial W2[o, i, …]·c_i (depthwise: Σ_spatial W2[i, 0, …]·c_i).
 * conv2 gets a bias initializer when it had none. Returns a new graph.
 * Throws QpError INTERNAL when a pair's distribution is missing or has the wrong length.
 */
export function absorbHighBias(
  g: Graph,
  pairs: readonly ClePair[],
  dist: ReadonlyMap<string, ChannelDistribution>,
  k = 3,
): AbsorbResult {
  const out = cloneGraph(g, { shareInitializers: true });
  const nodes = nodeByName(out);
  const params = new Params(out);
  const absorbed = new Map<string, Float64Array>();
  for (const p of pairs) {
    const act = nodes.get(p.act);
    const c1 = nodes.get(p.first);
    const c2 = nodes.get(p.second);
    if (!act || !c1 || !c2 || !c1.inputs[2] || activationKind(out, act) !== 'relu') continue;
    const d = dist.get(p.preActivation);
    if (!d || d.mean.length !== p.channels || d.std.length !== p.channels) {
      throw new QpError(
        'INTERNAL',
        `High-bias absorption needs the per-channel mean and deviation of "${p.preActivation}" (${p.channels} channels).`,
      );
    }
    const c = new Float64Array(p.channels);
    for (let i = 0; i < p.channels; i++) c[i] = Math.max(0, d.mean[i] - k * d.std[i]);
    if (p.clipBound) {
      const m = params.get(p.clipBound);
      for (let i = 0; i < p.channels; i++) c[i] = Math.min(c[i], m[i]);
    }
    if (!c.some((v) => v > 0)) continue;
    if (p.clipBound) {
      const m = params.get(p.clipBound);
      for (let i = 0; i < p.channels; i++) m[i] -= c[i];
    }
    if (!c2.inputs[2]) {
      const name = `${c2.name}__cle_bias`;
      const outCh = out.initializers.get(c2.inputs[1])!.dims[0];
      out.initializers.set(name, makeTensor(name, [outCh], new Array<number>(outCh).fill(0)));
      c2.inputs = [c2.inputs[0], c2.inputs[1], name];
    }
    const b1 = params.get(c1.inputs[2]);
    for (let i = 0; i < p.channels; i++) b1[i] -= c[i];
    const w2 = params.get(c2.inputs[1]);
    const dims2 = out.initializers.get(c2.inputs[1])!.dims;
    const b2 = params.get(c2.inputs[2]);
    const spatial = w2.length / (dims2[0] * dims2[1]);
    if (p.depthwiseSecond) {
      for (let i = 0; i < p.channels; i++) {
        let s = 0;
        for (let kk = 0; kk < spatial; kk++) s += w2[i * spatial + kk];
        b2[i] += s * c[i];
      }
    } else {
      for (let o = 0; o < dims2[0]; o++) {
        let s = 0;
        for (let i = 0; i < p.channels; i++) {
          const base = (o * p.channels + i) * spatial;
          let ws = 0;
          for (let kk = 0; kk < spatial; kk++) ws += w2[base + kk];
          s += ws * c[i];
        }
        b2[o] += s;
      }
    }
    absorbed.set(p.first, c);
  }
  params.commit();
  return { graph: out, absorbed };
}
