/**
 * MQBench-style text tables of experiment results, for the CLI. Pure formatting.
 */
import type { ExperimentResult } from './types.ts';
import type { LayerAnalysis } from '../protocol/analysis.ts';
import { learnsActivationRanges } from '../config/names.ts';
import { learnedSteps, learnedStepsSummary } from './learned-steps.ts';

const pct = (x: number) => (100 * x).toFixed(2);

export function configLabel(r: Pick<ExperimentResult, 'config'>): string {
  const c = r.config;
  const fixes = [
    c.cle ? '+cle' : '',
    c.biasCorrection ? '+bc' : '',
    c.bnReestimate ? '+bn' : '',
    Object.keys(c.layerBits ?? {}).length ? `+${Object.keys(c.layerBits).length}L` : '',
    c.ptq === 'gptq' ? '+gptq' : c.ptq !== 'none' ? `+${c.ptq}${c.ptqIters}` : '',
    c.ptq === 'qdrop' && c.ptqDrop !== 50 ? `(drop ${c.ptqDrop}%)` : '',
    c.ptq !== 'none' && c.ptq !== 'gptq' && learnsActivationRanges(c) ? '+lsq' : '',
    c.ptq !== 'none' && c.ptqInputs === 'fp32' ? '(fp32 inputs)' : '',
  ].join('');
  return `${c.backend} W${c.wBits}A${c.aBits} ${c.wGranularity === 'per-channel' ? 'pc' : 'pt'} ${c.wObserver}/${c.aObserver}${fixes}`;
}

/** Renders rows as an aligned table with a header rule. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function resultsTable(results: ExperimentResult[]): string {
  const header = ['config', 'FP32 top-1', 'Q top-1', 'Q top-5', 'drop', '95% CI (Q top-1)', 'agree', 'sec'];
  const rows = results.map((r) => [
    configLabel(r),
    pct(r.fp32.top1),
    pct(r.quant.top1),
    pct(r.quant.top5),
    (100 * (r.fp32.top1 - r.quant.top1)).toFixed(2),
    `${pct(r.quant.top1Ci[0])}–${pct(r.quant.top1Ci[1])}`,
    pct(r.agreement),
    r.seconds.toFixed(1),
  ]);
  return table(header, rows);
}

const db = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : x > 0 ? 'inf' : '-inf');

/** Per-layer analysis table in network order (issue "See why accuracy drops"). */
export function layersTable(layers: LayerAnalysis[]): string {
  const header = [
    'layer',
    'op',
    'W bits',
    'W SQNR',
    'act SQNR alone',
    'act SQNR accum',
    'cos accum',
    '|Δμ|/σ',
    'σq/σ',
    'vanished',
  ];
  const rows = layers.map((l) => [
    l.name,
    l.opType === 'Conv' && l.depthwise ? 'Conv dw' : l.opType,
    String(l.weightBits),
    db(l.weightSqnrDb),
    db(l.standalone.sqnrDb),
    db(l.accumulated.sqnrDb),
    l.accumulated.cosine.toFixed(3),
    l.drift.meanAbsShift.toFixed(3),
    l.drift.stdRatio.toFixed(3),
    `${l.vanishedChannels}/${l.channels}`,
  ]);
  return table(header, rows);
}

/** The n layers with the lowest standalone activation SQNR (their own quantization error), worst first. */
export function worstLayers<T extends { standalone: { sqnrDb: number } }>(layers: T[], n = 5): T[] {
  return [...layers].sort((a, b) => a.standalone.sqnrDb - b.standalone.sqnrDb).slice(0, n);
}

/** One line per result that applied fixes: top-1 before → after, and the weight/activation-only split when analysed. */
export function fixesAndAnalysisSummary(results: ExperimentResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    if (r.beforeFixes)
      lines.push(`${configLabel(r)}: top-1 ${pct(r.beforeFixes.top1)} before fixes → ${pct(r.quant.top1)} after`);
    if (r.analysis) {
      const a = r.analysis;
      lines.push(
        `${configLabel(r)}: weight-only top-1 ${pct(a.weightOnly.top1)}, activation-only ${pct(a.activationOnly.top1)}; ` +
          `logits SQNR full ${db(a.logitsSqnrDb.full)} dB, weight-only ${db(a.logitsSqnrDb.weightOnly)} dB, activation-only ${db(a.logitsSqnrDb.activationOnly)} dB (${a.images} images)`,
      );
    }
  }
  return lines.join('\n');
}

/**
 * Reconstruction table. Per layer: error relative to ‖WX‖² before/after, rounding flips; for
 * the methods with engine gradients, per unit (block or layer): its output error relative
 * to the FP32 output before/after and the step sizes it learned.
 */
export function ptqTable(report: import('../protocol/ptq.ts').PtqReport): string {
  if (report.units) {
    const header = [
      'unit',
      'layers',
      'err before',
      `err ${report.method}`,
      'step sizes before → after',
      'sec',
      'ms/step',
    ];
    const rows = report.units.map((u) => [
      u.name,
      String(u.layers.length),
      u.skipped ? '-' : u.errorBefore.toExponential(2),
      u.skipped ? (u.skipped.length > 40 ? `${u.skipped.slice(0, 39)}…` : u.skipped) : u.errorAfter.toExponential(2),
      u.scales.map((s) => `${s.before.toPrecision(3)}→${s.after.toPrecision(3)}`).join(' '),
      u.seconds.toFixed(1),
      u.stepSeconds === undefined ? '-' : (1000 * u.stepSeconds).toFixed(0),
    ]);
    const steps = learnedSteps(report);
    return steps.length ? `${table(header, rows)}\n${learnedStepsSummary(steps)}` : table(header, rows);
  }
  const header = ['layer', 'W bits', 'err RTN', `err ${report.method}`, 'flips %', 'sec'];
  const rows = report.layers
    .filter((l) => !l.skipped)
    .map((l) => [
      l.node,
      String(l.bits),
      l.errorBefore.toExponential(2),
      l.errorAfter.toExponential(2),
      (100 * l.flips).toFixed(1),
      l.seconds.toFixed(1),
    ]);
  return table(header, rows);
}
