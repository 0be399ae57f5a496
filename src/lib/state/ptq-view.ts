/**
 * Pure helpers behind the reconstruction chart in the results: the layers AdaRound or
 * GPTQ actually changed, in network order, with their error before/after and the share
 * of weights rounded away from nearest, plus one summary line. Plain data in and out.
 */
import type { PtqReport } from '../protocol/ptq.ts';

export type { PtqReport } from '../protocol/ptq.ts';

export interface PtqRow {
  node: string;
  /** position in network order among the reconstructed layers */
  index: number;
  bits: number;
  /** relative reconstruction error ‖ΔW·X‖²/‖W·X‖², round-to-nearest and after the method */
  before: number;
  after: number;
  /** fraction of weights whose code differs from round-to-nearest */
  flips: number;
}

/** Reconstructed layers only (8-bit and unsupported layers keep round-to-nearest and are left out). */
export function ptqRows(report: PtqReport): PtqRow[] {
  return report.layers
    .filter((l) => !l.skipped && Number.isFinite(l.errorBefore) && Number.isFinite(l.errorAfter))
    .map((l, index) => ({
      node: l.node,
      index,
      bits: l.bits,
      before: l.errorBefore,
      after: l.errorAfter,
      flips: l.flips,
    }));
}

/** The two series of the error chart, long form for a grouped plot. */
export function errorSeries(
  rows: readonly PtqRow[],
): { node: string; which: 'round-to-nearest' | 'after'; error: number }[] {
  return rows.flatMap((r) => [
    { node: r.node, which: 'round-to-nearest' as const, error: r.before },
    { node: r.node, which: 'after' as const, error: r.after },
  ]);
}

/** One sentence: how much the error fell overall and how many weights flipped. */
export function ptqSummary(report: PtqReport, rows: readonly PtqRow[]): string {
  const name = report.method === 'adaround' ? `AdaRound (${report.iters ?? '?'} steps per layer)` : 'GPTQ';
  if (!rows.length) return `${name} changed no layer: every layer kept round-to-nearest.`;
  // geometric mean of after/before: errors span orders of magnitude across layers
  const ratio = Math.exp(
    rows.reduce((s, r) => s + Math.log(Math.max(r.after, 1e-12) / Math.max(r.before, 1e-12)), 0) / rows.length,
  );
  const flips = rows.reduce((s, r) => s + r.flips, 0) / rows.length;
  return `${name} reconstructed ${rows.length} layers: their output error is ${(100 * ratio).toFixed(0)}% of round-to-nearest's (geometric mean), with ${(100 * flips).toFixed(1)}% of weights rounded away from nearest on average. Time: ${(report.gramSeconds + report.solveSeconds).toFixed(1)} s.`;
}
