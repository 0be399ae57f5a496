/**
 * The per-layer table of an imported quantized model as the CLI prints it: one row per
 * weighted layer with its weight grid (bits, sign, symmetry, granularity) and where its
 * input and output are quantized; the full form (`--analyze`) adds scale ranges, zero
 * points, the activations' real ranges and how the bias is stored. Then what the reader did
 * not understand and its notes. Pure text formatting.
 */
import type { ActivationInfo, ImportedModel, QuantDescription } from './read.ts';

const g3 = (v: number) =>
  v === 0 ? '0' : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? v.toPrecision(3) : v.toExponential(2);

/** "int8 sym pc(0) [-127,127] s 1.2e-3…4.5e-2" */
export function quantText(q: QuantDescription): string {
  const grain = q.granularity === 'per-channel' ? `pc(${q.axis})` : 'pt';
  const sym = q.symmetric ? 'sym' : 'asym';
  const s = q.scale.min === q.scale.max ? `s ${g3(q.scale.min)}` : `s ${g3(q.scale.min)}…${g3(q.scale.max)}`;
  const z = q.zeroPoint.min === q.zeroPoint.max ? `zp ${q.zeroPoint.min}` : `zp ${q.zeroPoint.min}…${q.zeroPoint.max}`;
  return `${q.storage}${q.narrow ? ` [${q.qmin},${q.qmax}]` : ''} ${sym} ${grain} ${s} ${z}`;
}

/** "int8 sym pc(0)" */
function shortText(q: QuantDescription): string {
  const grain = q.granularity === 'per-channel' ? `pc(${q.axis})` : 'pt';
  return `${q.storage}${q.narrow ? ` [${q.qmin},${q.qmax}]` : ''} ${q.symmetric ? 'sym' : 'asym'} ${grain}`;
}

function actText(a: ActivationInfo | null, full: boolean): string {
  if (!a) return 'float';
  if (!full) return `${a.storage}${a.narrow ? ` [${a.qmin},${a.qmax}]` : ''}`;
  return `${a.storage}${a.narrow ? ` [${a.qmin},${a.qmax}]` : ''} [${g3(a.range.min)}, ${g3(a.range.max)}] zp ${a.zeroPoint.min}`;
}

/** The table (see module header; `full`: every parameter), lines joined by '\n'. */
export function importedTable(m: ImportedModel, opts: { full?: boolean } = {}): string {
  const full = opts.full ?? true;
  const head = ['#', 'layer', 'op', 'weights', 'input', 'output', ...(full ? ['bias'] : [])];
  const rows = m.layers.map((l, i) => [
    String(i + 1),
    l.label === l.node ? l.node : `${l.label} (${l.node})`,
    l.opType,
    l.weight
      ? `${full ? quantText(l.weight) : shortText(l.weight)}${l.weight.storedAs === 'float' ? ' (float+QDQ)' : ''}`
      : 'float',
    actText(l.input, full),
    actText(l.output, full),
    ...(full ? [l.bias] : []),
  ]);
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
  const line = (r: string[]) =>
    r
      .map((c, k) => (k === 0 ? c.padStart(widths[k]) : c.padEnd(widths[k])))
      .join('  ')
      .trimEnd();
  const out = [
    `Imported ${m.format === 'qdq' ? 'QDQ' : m.format === 'qoperator' ? 'QOperator' : 'float'} model: ${m.layers.length} quantized layer(s), ${m.activations.length} activation quantizer(s)${m.floatLayers.length ? `, ${m.floatLayers.length} layer(s) in float (${m.floatLayers.slice(0, 4).join(', ')}${m.floatLayers.length > 4 ? ', …' : ''})` : ''}`,
    line(head),
    ...rows.map(line),
  ];
  for (const u of m.unsupported) out.push(`not understood: ${u.opType} "${u.node}": ${u.reason}`);
  for (const n of m.notes) out.push(`note: ${n}`);
  return out.join('\n');
}
