/**
 * An imported quantized model and its float parent, put together the one way every caller
 * (CLI, worker, tests) needs them: the parent with BatchNorm folded (quantizers fold it),
 * the layers matched by topology, and the imported scheme laid onto the parent's tensors.
 * Also the serializable summary of a quantized file that the app and the JSON records
 * carry. Pure graph work: nothing runs here.
 */
import { QpError } from '../util/errors.ts';
import { foldBatchNorm } from '../onnx/fold-bn.ts';
import type { Graph } from '../onnx/ir.ts';
import type { QuantizedInfo } from '../protocol/imported.ts';
import { type GraphMatch, matchGraphs } from './match.ts';
import { type ImportedModel, requireUnderstood } from './read.ts';
import { type ImportedScheme, schemeOnParent } from './resimulate.ts';

export interface ImportedPair {
  /** the parent as matched (BN folded) */
  parent: Graph;
  match: GraphMatch;
  scheme: ImportedScheme;
}

/**
 * Pairs an imported model (read from the file with sha256 `sha256`) with its parent's
 * graph. Throws QpError MODEL_UNSUPPORTED when the imported model holds ops the reader does
 * not understand, and when no quantized layer matches a parent layer (not its parent).
 */
export function pairWithParent(imported: ImportedModel, parentGraph: Graph, sha256: string): ImportedPair {
  requireUnderstood(imported, 'compared with a float parent');
  const parent = foldBatchNorm(parentGraph).graph;
  const match = matchGraphs(imported.skeleton, parent);
  const scheme = schemeOnParent(imported, parent, match, sha256);
  if (imported.weights.length > 0 && scheme.layers.length === 0)
    throw new QpError(
      'MODEL_UNSUPPORTED',
      `None of the ${imported.weights.length} quantized layers of the imported model matches a layer of the float model, so it is not its parent. Open the float model the quantized one was made from.`,
    );
  return { parent, match, scheme };
}

/** What loading a quantized file tells the app and the JSON record (undefined for a float model). */
export function quantizedInfo(m: ImportedModel): QuantizedInfo | undefined {
  if (m.format === 'float') return undefined;
  return {
    format: m.format,
    layers: m.layers,
    activations: m.activations.length,
    floatLayers: m.floatLayers,
    unsupported: m.unsupported.map((u) => `${u.opType} "${u.node}": ${u.reason}`),
    notes: m.notes,
  };
}
