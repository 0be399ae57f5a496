/**
 * MQBench-style text tables of experiment results, for the CLI. Pure formatting.
 */
import type { ExperimentResult } from './types.ts';

const pct = (x: number) => (100 * x).toFixed(2);

export function configLabel(r: ExperimentResult): string {
  const c = r.config;
  const fixes = [c.biasCorrection ? '+bc' : '', c.bnReestimate ? '+bn' : ''].join('');
  return `${c.backend} W${c.wBits}A${c.aBits} ${c.wGranularity === 'per-channel' ? 'pc' : 'pt'} ${c.wObserver}/${c.aObserver}${fixes}`;
}

/** Renders rows as an aligned table with a header rule. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
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
