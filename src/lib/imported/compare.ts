/**
 * An imported quantized model compared with its float parent, layer by layer:
 * - accumulated error of the file itself: each matched quantized tensor of the imported
 *   model (read through a DequantizeLinear tap on its integer tensor, so the values are
 *   exactly what the next layer reads) against the parent's float tensor, over the analysis
 *   images; the tapped session is checked against the untapped one (`tapAgreement`), since
 *   an extra output can keep onnxruntime from fusing a node;
 * - the simulated views of the re-simulated scheme (analysis/analyze.ts): per-layer error
 *   standalone and accumulated, weight SQNR, and weight-only / activation-only accuracy;
 * - per layer, how many of the file's weight codes are the parent's weights rounded on the
 *   imported grid (less than 100%: the exporter changed the weights, e.g. AdaRound).
 * Error sums and metrics are analysis/metrics.ts's.
 */
import { throwIfAborted } from '../util/errors.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Engine } from '../engine/types.ts';
import { analyzeQuantization } from '../analysis/analyze.ts';
import { addErrorSums, emptyErrorSums, errorMetrics, errorSumsOf, type ErrorSums } from '../analysis/metrics.ts';
import type { ErrorMetrics } from '../analysis/types.ts';
import type { LayerComparison, ParentComparison, TensorComparison } from '../protocol/imported.ts';
import { batches } from '../experiment/batches.ts';
import type { ExperimentConfig } from '../config/types.ts';
import { addOutputs } from '../onnx/fake-quant.ts';
import { type Graph, NameAllocator, cloneGraph, makeNode, makeTensor } from '../onnx/ir.ts';
import { layerNames } from '../onnx/layer-names.ts';
import { parseModel, serializeModel } from '../onnx/model.ts';
import type { GraphMatch } from './match.ts';
import type { ImportedModel } from './read.ts';
import type { ImportedScheme } from './resimulate.ts';
import { resimulatedGraph } from './evaluate.ts';

export type { LayerComparison, ParentComparison, TensorComparison };

/**
 * The imported model's file with a DequantizeLinear tap on the integer tensor of every
 * quantizer with a parent tensor; returns the bytes and skeleton tensor → tap output.
 */
export function tapImported(
  file: Graph,
  imported: ImportedModel,
  match: GraphMatch,
): { bytes: Uint8Array; taps: Map<string, string> } {
  const g = cloneGraph(file, { shareInitializers: true });
  const names = new NameAllocator(g);
  const taps = new Map<string, string>();
  for (const a of imported.activations) {
    if (!a.intTensor || !match.tensors.has(a.tensor) || a.qparams.scale.length !== 1) continue;
    if (a.storage !== 'int8' && a.storage !== 'uint8') continue;
    const s = names.take(`${a.intTensor}_tap_scale`);
    const z = names.take(`${a.intTensor}_tap_zero_point`);
    g.initializers.set(s, makeTensor(s, [], Float32Array.of(a.qparams.scale[0])));
    g.initializers.set(z, makeTensor(z, [], [a.qparams.zeroPoint[0]], a.storage));
    const out = names.take(`${a.intTensor}_tap`);
    g.nodes.push(makeNode('DequantizeLinear', [a.intTensor, s, z], [out], {}, { name: names.take(`${out}_node`) }));
    g.outputs.push({ name: out, dtype: 'float32', shape: null });
    taps.set(a.tensor, out);
  }
  return { bytes: serializeModel(g), taps };
}

export interface CompareInputs {
  engine: Engine;
  fileBytes: Uint8Array;
  imported: ImportedModel;
  match: GraphMatch;
  scheme: ImportedScheme;
  /** the re-simulation config (resimulationConfig) */
  config: ExperimentConfig;
  spec: PreprocessSpec;
  /** images of the per-layer pass */
  crops: Uint8Array[];
  /** evaluation images for weight-only / activation-only accuracy (optional) */
  evalCrops?: Uint8Array[];
  evalLabels?: number[];
  batchSize?: number;
  signal?: AbortSignal;
}

/** The comparison (see module header). Throws the engine's QpError. */
export async function compareWithParent(inp: CompareInputs): Promise<ParentComparison> {
  const { engine, imported, match, scheme } = inp;
  const { bytes, taps } = tapImported(parseModel(inp.fileBytes), imported, match);
  const tapped = await engine.createSession(bytes);
  const plain = await engine.createSession(inp.fileBytes);
  const parentTensors = [...taps.keys()].map((t) => match.tensors.get(t)!);
  // the parent as matched: scheme.graph has the same tensors (plus Identity outputs)
  const parentTap = addOutputs(scheme.graph, parentTensors);
  const parent = await engine.createSession(serializeModel(parentTap));
  const sums = new Map<string, ErrorSums>([...taps.keys()].map((t) => [t, emptyErrorSums()]));
  let same = 0;
  let n = 0;
  try {
    for (const b of batches(inp.crops, inp.spec, inp.batchSize ?? 8)) {
      throwIfAborted(inp.signal);
      const feed = { [tapped.inputNames[0]]: b.tensor };
      const a = await tapped.run(feed);
      const p = await parent.run({ [parent.inputNames[0]]: b.tensor }, parentTensors);
      const o = await plain.run({ [plain.inputNames[0]]: b.tensor }, [plain.outputNames[0]]);
      const la = a[tapped.outputNames[0]].data;
      const lo = o[plain.outputNames[0]].data;
      const k = la.length / b.rows.length;
      for (let r = 0; r < b.rows.length; r++) {
        same += argmax(la, r * k, k) === argmax(lo, r * k, k) ? 1 : 0;
        n++;
      }
      for (const [t, out] of taps) {
        const ref = p[match.tensors.get(t)!].data;
        const q = a[out].data;
        if (ref.length === q.length) addErrorSums(sums.get(t)!, errorSumsOf(ref, q));
      }
    }
  } finally {
    await tapped.release();
    await plain.release();
    await parent.release();
  }
  const tensors: TensorComparison[] = [...taps.keys()].map((t) => ({
    imported: t,
    parent: match.tensors.get(t)!,
    accumulated: errorMetrics(sums.get(t)!),
  }));

  const re = resimulatedGraph(scheme, inp.config);
  const analysed = await analyzeQuantization({
    engine,
    graph: scheme.graph,
    points: scheme.points,
    weights: re.weights,
    activations: re.activations,
    spec: inp.spec,
    crops: inp.crops,
    evalCrops: inp.evalCrops,
    evalLabels: inp.evalLabels,
    signal: inp.signal,
  });
  const byParent = new Map(analysed.layers.map((l) => [l.name, l] as const));
  const labels = layerNames(scheme.graph);
  const sk = new Map(imported.skeleton.nodes.map((x) => [x.name, x] as const));
  const tensorBy = new Map(tensors.map((t) => [t.imported, t] as const));
  const layers: LayerComparison[] = scheme.layers.map((l) => {
    const info = imported.layers.find((x) => x.node === l.imported);
    const outT = info?.output?.tensor ?? sk.get(l.imported)?.outputs[0];
    return {
      parent: l.parent,
      imported: l.imported,
      label: labels.get(l.parent)?.label ?? l.parent,
      codeAgreement: l.codeAgreement,
      fileAccumulated: (outT && tensorBy.get(outT)?.accumulated) || null,
      simulated: byParent.get(l.parent) ?? null,
    };
  });
  return { images: n, tapAgreement: n ? same / n : 1, tensors, layers, analysis: analysed.analysis };
}

function argmax(a: Float32Array, off: number, k: number): number {
  let best = 0;
  for (let c = 1; c < k; c++) if (a[off + c] > a[off + best]) best = c;
  return best;
}

/** The comparison as text: one row per matched layer. */
export function comparisonTable(c: ParentComparison): string {
  // an SQNR is infinite where the error is zero (e.g. weights already on the imported grid)
  const dbText = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : 'inf');
  const db = (m: ErrorMetrics | null | undefined) => (m ? dbText(m.sqnrDb) : '-');
  const head =
    '  #  layer                                   file acc dB  sim standalone dB  sim acc dB  weight SQNR dB  codes = RTN';
  const rows = c.layers.map(
    (l, i) =>
      `${String(i + 1).padStart(3)}  ${`${l.label} (${l.parent})`.slice(0, 38).padEnd(38)}  ${db(l.fileAccumulated).padStart(11)}  ${db(l.simulated?.standalone).padStart(17)}  ${db(l.simulated?.accumulated).padStart(10)}  ${(l.simulated ? dbText(l.simulated.weightSqnrDb) : '-').padStart(14)}  ${(100 * l.codeAgreement).toFixed(1).padStart(10)}%`,
  );
  return [
    `Per-layer comparison with the float parent (${c.images} images; SQNR in dB; the tapped file agrees with the untapped one on ${(100 * c.tapAgreement).toFixed(1)}% of top-1 decisions):`,
    head,
    ...rows,
  ].join('\n');
}
