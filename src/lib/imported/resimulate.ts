/**
 * The imported scheme as a playground config on the float parent: every matched weight's
 * grid and every matched activation quantizer, moved onto the parent's tensors, as the
 * fixed grids and ranges the quantize step takes with the observer 'imported'
 * (experiment/quantize.ts FixedQuant), plus the quantization points they sit on and a
 * config whose preset fields describe the imported scheme.
 *
 * Where the imported model quantizes a tensor the playground's placement rules never pick
 * (a Conv output before its activation, the logits), the point is added here; a quantized
 * graph output is given an Identity so its fake-quantizer has a tensor to sit on (the
 * fake-quant graph never rewires graph outputs). Each point's placement rule is the kind
 * of layer that reads it (through reshapes and activations), so the placement switches
 * still turn imported quantizers off by kind.
 *
 * Pure: graphs and typed arrays in and out; no engine.
 */
import type { ExperimentConfig } from '../config/types.ts';
import type { PlacementRules } from '../config/schema.ts';
import { QpError } from '../util/errors.ts';
import type { FixedQuant } from '../experiment/quantize.ts';
import { type Graph, type Node, NameAllocator, cloneGraph, consumersOf, makeNode, producerOf } from '../onnx/ir.ts';
import { type ActivationPoint, type QuantPoints, findQuantPoints, ALL_PLACEMENT } from '../onnx/placement.ts';
import { quantizeToInt } from '../quant/quantizer.ts';
import type { QParams } from '../quant/types.ts';
import type { GraphMatch } from './match.ts';
import { type ImportedModel, describeQuantizer } from './read.ts';
import { isSigned } from './ints.ts';

export interface SchemeLayer {
  parent: string;
  imported: string;
  /** fraction of the imported weight codes equal to the parent's weights rounded on the imported grid */
  codeAgreement: number;
}

export interface ImportedScheme {
  /** 'sha256:<hex>' of the quantized file: the value of config.importedScheme */
  id: string;
  format: ImportedModel['format'];
  /** the parent as re-simulated: BN folded by the caller, quantized outputs behind an Identity */
  graph: Graph;
  points: QuantPoints;
  fixed: FixedQuant;
  layers: SchemeLayer[];
  /** imported quantizers with no parent tensor, and imported layers with no parent layer */
  unmatched: { activations: string[]; layers: string[] };
  /** the preset fields that describe the imported scheme (most common bits, …) */
  fields: Partial<ExperimentConfig>;
}

/** Output-channel axis of a weight as read by its node. */
function outAxis(n: Node, weightSlot: number): number {
  if (n.opType === 'Conv') return 0;
  if (n.opType === 'Gemm') return n.attrs.transB === 1 ? 0 : 1;
  return weightSlot === 1 ? 1 : 0;
}

function transpose2d(a: Int32Array, rows: number, cols: number): Int32Array {
  const out = new Int32Array(a.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j];
  return out;
}

function mostCommon<T>(xs: T[], fallback: T): T {
  const counts = new Map<string, [T, number]>();
  for (const x of xs) {
    const k = JSON.stringify(x);
    const c = counts.get(k);
    counts.set(k, [x, (c?.[1] ?? 0) + 1]);
  }
  let best: [T, number] = [fallback, 0];
  for (const c of counts.values()) if (c[1] > best[1]) best = c;
  return best[0];
}

/** The placement rule of a tensor: the kind of the first quantizable layer reading it. */
function ruleOf(g: Graph, cons: Map<string, Node[]>, prod: Map<string, Node>, t: string): (keyof PlacementRules)[] {
  if (g.inputs.some((v) => v.name === t)) return ['modelInput'];
  const rules = new Set<keyof PlacementRules>();
  const seen = new Set<string>();
  const walk = (x: string, depth: number) => {
    if (depth > 8 || seen.has(x)) return;
    seen.add(x);
    for (const c of cons.get(x) ?? []) {
      const op = c.opType;
      if (op === 'Conv') rules.add('conv');
      else if (op === 'Gemm' || op === 'MatMul') rules.add('gemm');
      else if (op === 'Add') rules.add('add');
      else if (op === 'Concat') rules.add('concat');
      else if (/Pool$/.test(op)) rules.add('pool');
      else walk(c.outputs[0], depth + 1);
    }
  };
  walk(t, 0);
  if (rules.size === 0) {
    const p = prod.get(t)?.opType;
    rules.add(p === 'Gemm' || p === 'MatMul' ? 'gemm' : p === 'Add' ? 'add' : p === 'Concat' ? 'concat' : 'conv');
  }
  return [...rules];
}

/**
 * The imported scheme on the parent (see module header). `parent` must be the float graph
 * the match was made against (BN folded when the imported model folded it). Throws QpError
 * MODEL_UNSUPPORTED when a matched weight cannot be laid onto the parent's (other shape,
 * per-channel along an input axis).
 */
export function schemeOnParent(
  imported: ImportedModel,
  parent: Graph,
  match: GraphMatch,
  sha256: string,
): ImportedScheme {
  const skNodes = new Map(imported.skeleton.nodes.map((n) => [n.name, n] as const));
  const pNodes = new Map(parent.nodes.map((n) => [n.name, n] as const));
  const weights = new Map<string, QParams>();
  const layers: SchemeLayer[] = [];
  const unmatchedLayers = [...match.unmatchedImported];
  for (const pair of match.layers) {
    const w = imported.weights.find((x) => x.node === pair.imported);
    if (!w) continue;
    const sn = skNodes.get(pair.imported)!;
    const pn = pNodes.get(pair.parent)!;
    const pSlot = pn.opType === 'MatMul' && parent.initializers.has(pn.inputs[0]) ? 0 : 1;
    const pw = parent.initializers.get(pn.inputs[pSlot]);
    if (!pw || pw.dtype !== 'float32') continue;
    const sAxis = outAxis(sn, sn.inputs.indexOf(w.initializer));
    const pAxis = outAxis(pn, pSlot);
    const same = w.dims.length === pw.dims.length && w.dims.every((d, i) => d === pw.dims[i]);
    const transposed =
      !same && w.dims.length === 2 && pw.dims.length === 2 && w.dims[0] === pw.dims[1] && w.dims[1] === pw.dims[0];
    if ((!same && !transposed) || (same && sAxis !== pAxis && w.dims.length !== 2)) {
      unmatchedLayers.push(pair.imported);
      continue;
    }
    if (w.qparams.axis >= 0 && w.qparams.axis !== sAxis)
      throw new QpError(
        'MODEL_UNSUPPORTED',
        `The weights of "${pair.imported}" are quantized per channel along axis ${w.qparams.axis}, not along their output channels; such a grid cannot be re-simulated.`,
      );
    const grid: QParams = { ...w.qparams, axis: w.qparams.axis >= 0 ? pAxis : -1 };
    weights.set(pw.name, grid);
    let codes = w.codes;
    if (transposed) codes = transpose2d(codes, w.dims[0], w.dims[1]);
    else if (w.dims.length === 2 && sAxis !== pAxis) codes = transpose2d(codes, w.dims[0], w.dims[1]);
    const mine = quantizeToInt(pw.data as Float32Array, pw.dims, grid);
    let equal = 0;
    for (let i = 0; i < mine.length; i++) if (mine[i] === codes[i]) equal++;
    layers.push({ parent: pair.parent, imported: pair.imported, codeAgreement: equal / mine.length });
  }

  // activations: onto parent tensors; quantized graph outputs behind an Identity
  const graph = cloneGraph(parent, { shareInitializers: true });
  const names = new NameAllocator(graph);
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const activations = new Map<string, QParams>();
  const origin = new Map<string, string>();
  const unmatchedActs: string[] = [];
  for (const a of imported.activations) {
    let t = match.tensors.get(a.tensor);
    if (!t) {
      unmatchedActs.push(a.tensor);
      continue;
    }
    if (outputs.has(t)) {
      const raw = names.take(`${t}_before_output`);
      for (const n of graph.nodes) n.outputs = n.outputs.map((o) => (o === t ? raw : o));
      for (const n of graph.nodes) n.inputs = n.inputs.map((i) => (i === t ? raw : i));
      graph.nodes.push(makeNode('Identity', [raw], [t], {}, { name: names.take(`${t}_output`) }));
      outputs.delete(t);
      t = raw;
    }
    if (!activations.has(t)) {
      activations.set(t, a.qparams);
      origin.set(t, a.origin);
    }
  }
  const base = findQuantPoints(graph, ALL_PLACEMENT);
  const known = new Map(base.activations.map((p) => [p.tensor, p] as const));
  const cons = consumersOf(graph);
  const prod = producerOf(graph);
  const points: ActivationPoint[] = [];
  for (const n of [...graph.inputs.map((v) => v.name), ...graph.nodes.flatMap((n) => n.outputs)]) {
    if (!activations.has(n)) continue;
    const k = known.get(n);
    points.push({
      tensor: n,
      consumers: (cons.get(n) ?? []).map((c) => c.name),
      reasons: [`imported (${origin.get(n)})`],
      rules: k ? k.rules : ruleOf(graph, cons, prod, n),
      firstLayerInput: k?.firstLayerInput ?? false,
      lastLayerInput: k?.lastLayerInput ?? false,
    });
  }

  // the preset fields that describe the scheme
  const wd = imported.weights.map((w) => describeQuantizer({ qparams: w.qparams, storage: w.storage }));
  const ad = imported.activations.map((a) => describeQuantizer(a));
  const fields: Partial<ExperimentConfig> = {
    wBits: mostCommon(
      wd.map((d) => d.bits),
      8,
    ),
    wGranularity: mostCommon(
      wd.map((d) => d.granularity),
      'per-channel',
    ),
    wSymmetric: wd.every((d) => d.zeroPoint.min === 0 && d.zeroPoint.max === 0),
    wNarrowRange: wd.length > 0 && wd.every((d) => d.narrow),
    wPowerOfTwo: false,
    wObserver: 'imported',
    aBits: mostCommon(
      ad.map((d) => d.bits),
      8,
    ),
    aSymmetric: ad.every((d) => d.zeroPoint.min === 0 && d.zeroPoint.max === 0),
    aNarrowRange: ad.length > 0 && ad.every((d) => d.signed && d.narrow),
    aPowerOfTwo: false,
    aSign: ad.every((d) => isSigned(d.storage))
      ? 'signed'
      : ad.every((d) => !isSigned(d.storage))
        ? 'unsigned'
        : 'auto',
    aObserver: 'imported',
    placement: { ...ALL_PLACEMENT },
    firstLast8bit: false,
    importedScheme: `sha256:${sha256}`,
  };
  return {
    id: `sha256:${sha256}`,
    format: imported.format,
    graph,
    points: {
      activations: points,
      weights: base.weights.filter((p) => weights.has(p.initializer)),
      unquantizedOps: base.unquantizedOps,
    },
    fixed: { weights, activations },
    layers,
    unmatched: { activations: unmatchedActs, layers: unmatchedLayers },
    fields,
  };
}

/**
 * The config that re-simulates a scheme: `base` (model, data, images, seed of the run)
 * with the scheme's fields. Every imported grid is then used as it is; change one field
 * afterwards to see what it does.
 */
export function resimulationConfig(scheme: ImportedScheme, base: ExperimentConfig): ExperimentConfig {
  return { ...base, ...scheme.fields, placement: { ...base.placement, ...scheme.fields.placement } };
}
