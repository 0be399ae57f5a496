/**
 * What the imported-model views show, as plain rows: the per-layer quantization of a
 * quantized file (bits, signed, symmetric, per-channel, scale range, zero points, where the
 * activations are quantized), its comparison with the float parent, and each layer's
 * imported weight bits by node name (the graph view marks them). Pure: no Svelte, no worker.
 */
import type { ImportedComparison, ImportedLayerInfo, QuantDescription } from '../protocol/imported.ts';
import type { ErrorMetrics } from '../protocol/analysis.ts';

/** three significant digits, exponent form outside [1e-3, 1e4) */
export const g3 = (v: number): string =>
  v === 0 ? '0' : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? v.toPrecision(3) : v.toExponential(2);
const span = (r: { min: number; max: number }, f: (v: number) => string = g3) =>
  r.min === r.max ? f(r.min) : `${f(r.min)} … ${f(r.max)}`;

export interface ImportedLayerRow {
  node: string;
  label: string;
  opType: string;
  /** weight bits ("8"), or "float" for a layer whose weights are not quantized */
  bits: string;
  signed: string;
  symmetric: string;
  granularity: string;
  scales: string;
  zeroPoints: string;
  /** where the layer's input and output are quantized ("uint8, range 0 … 6.00") or "float" */
  input: string;
  output: string;
}

function activation(a: ImportedLayerInfo['input']): string {
  if (!a) return 'float';
  return `${a.storage}${a.narrow ? ` [${a.qmin}, ${a.qmax}]` : ''}, range ${g3(a.range.min)} … ${g3(a.range.max)}`;
}

const yes = (b: boolean) => (b ? 'yes' : 'no');
const grain = (q: QuantDescription) => (q.granularity === 'per-channel' ? `per channel (${q.channels})` : 'per tensor');

/** One row per weighted layer of the imported model, in the file's order. */
export function importedLayerRows(layers: readonly ImportedLayerInfo[]): ImportedLayerRow[] {
  return layers.map((l) => {
    const w = l.weight;
    return {
      node: l.node,
      label: l.label,
      opType: l.opType,
      bits: w ? `${w.bits}` : 'float',
      signed: w ? yes(w.signed) : '–',
      symmetric: w ? yes(w.symmetric) : '–',
      granularity: w ? grain(w) : '–',
      scales: w ? span(w.scale) : '–',
      zeroPoints: w ? span(w.zeroPoint, String) : '–',
      input: activation(l.input),
      output: activation(l.output),
    };
  });
}

export interface ComparisonRow {
  parent: string;
  imported: string;
  label: string;
  /** SQNR in dB of the file's values against the parent's, accumulated ('–': no quantizer after the layer) */
  file: string;
  /** the re-simulated scheme: standalone and accumulated SQNR, weight SQNR */
  standalone: string;
  accumulated: string;
  weight: string;
  /** share of weight codes equal to the parent's weights rounded on the imported grid */
  codes: string;
}

/** an SQNR in dB with one decimal ('∞' when identical, '–' when not measured) */
export const db = (m: ErrorMetrics | null | undefined): string =>
  !m ? '–' : Number.isFinite(m.sqnrDb) ? m.sqnrDb.toFixed(1) : '∞';

export function comparisonRows(c: ImportedComparison): ComparisonRow[] {
  return c.comparison.layers.map((l) => ({
    parent: l.parent,
    imported: l.imported,
    label: l.label,
    file: db(l.fileAccumulated),
    standalone: db(l.simulated?.standalone),
    accumulated: db(l.simulated?.accumulated),
    weight: l.simulated ? db({ sqnrDb: l.simulated.weightSqnrDb, cosine: 1, mse: 0 }) : '–',
    codes: `${(100 * l.codeAgreement).toFixed(1)}%`,
  }));
}

/**
 * Weight bits of each imported layer by node name: the file's own node names, and the
 * parent's names of matched layers once a comparison is known (the graph view shows
 * whichever model is loaded).
 */
export function importedBits(
  layers: readonly ImportedLayerInfo[],
  comparison?: ImportedComparison,
): Map<string, number> {
  const bits = new Map<string, number>();
  for (const l of layers) if (l.weight) bits.set(l.node, l.weight.bits);
  for (const l of comparison?.comparison.layers ?? []) {
    const b = bits.get(l.imported);
    if (b !== undefined) bits.set(l.parent, b);
  }
  return bits;
}

/** A short summary of a quantized file, for the model picker: "QDQ, 12 of 13 layers quantized (8-bit weights)". */
export function quantizedSummary(q: {
  format: 'qdq' | 'qoperator';
  layers: readonly ImportedLayerInfo[];
  activations: number;
}): string {
  const withW = q.layers.filter((l) => l.weight);
  const bits = [...new Set(withW.map((l) => l.weight!.bits))].sort((a, b) => a - b);
  const fmt = q.format === 'qdq' ? 'QDQ' : 'QOperator';
  return `${fmt}: ${withW.length} of ${q.layers.length} layers quantized${bits.length ? ` (${bits.join('/')}-bit weights)` : ''}, ${q.activations} activation quantizers`;
}
