/**
 * Pure helpers behind the reconstruction chart in the results: the layers AdaRound or
 * GPTQ actually changed, or the units (blocks for BRECQ and QDrop, layers for AdaRound
 * with learned step sizes) a reconstruction with engine gradients trained, in network
 * order, with their error before/after and the share of weights rounded away from
 * nearest, plus one summary line; and the activation step sizes such a reconstruction learned,
 * per quantization point, against the calibrated ones. Plain data in and out.
 */
import { PTQ_LABEL } from '../config/names.ts';
import { learnedSteps, learnedStepsSummary, stepMoved } from '../experiment/learned-steps.ts';
import type { PtqReport } from '../protocol/ptq.ts';

export type { PtqReport } from '../protocol/ptq.ts';

export interface PtqRow {
  /** the layer's node, or the unit's first…last node */
  node: string;
  /** position in network order among the reconstructed layers */
  index: number;
  bits: number;
  /** relative reconstruction error ‖ΔW·X‖²/‖W·X‖², round-to-nearest and after the method */
  before: number;
  after: number;
  /** fraction of weights whose code differs from round-to-nearest (a unit: its layers' mean) */
  flips: number;
  /** a unit that kept its entry's rounding and step sizes (training found no lower error) */
  keptEntry?: boolean;
}

/**
 * Reconstructed layers only (8-bit and unsupported layers keep round-to-nearest and are
 * left out); with units, the trained units instead: their output error on entry and after,
 * and the mean flip share of their weight layers.
 */
export function ptqRows(report: PtqReport): PtqRow[] {
  if (report.units) return unitRows(report);
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

function unitRows(report: PtqReport): PtqRow[] {
  const byNode = new Map(report.layers.map((l) => [l.node, l]));
  return (report.units ?? [])
    .filter((u) => !u.skipped && Number.isFinite(u.errorBefore) && Number.isFinite(u.errorAfter))
    .map((u, index) => {
      const layers = u.layers.map((n) => byNode.get(n)).filter((l) => l !== undefined && !l.skipped);
      return {
        node: u.name,
        index,
        // the unit's lowest weight bit width (its 8-bit layers keep round-to-nearest)
        bits: layers.length ? Math.min(...layers.map((l) => l!.bits)) : 8,
        before: u.errorBefore,
        after: u.errorAfter,
        flips: layers.length ? layers.reduce((s, l) => s + l!.flips, 0) / layers.length : 0,
        ...(u.keptEntry ? { keptEntry: true } : {}),
      };
    });
}

/** What the chart's rows are: layers, or units of a reconstruction with engine gradients. */
export function ptqUnitKind(report: PtqReport): { one: string; many: string; before: string } {
  if (!report.units) return { one: 'layer', many: 'layers', before: 'round-to-nearest' };
  const blocks = report.method !== 'adaround';
  // a unit's entry: round-to-nearest weights and calibrated step sizes, on the inputs the
  // reconstructed units before it give
  return blocks
    ? { one: 'block', many: 'blocks', before: 'on entry' }
    : { one: 'layer', many: 'layers', before: 'on entry' };
}

/** The two series of the error chart, long form for a grouped plot. */
export function errorSeries(
  rows: readonly PtqRow[],
  before = 'round-to-nearest',
): { node: string; which: string; error: number }[] {
  return rows.flatMap((r) => [
    { node: r.node, which: before, error: r.before },
    { node: r.node, which: 'after', error: r.after },
  ]);
}

/** One sentence: how much the error fell overall and how many weights flipped. */
export function ptqSummary(report: PtqReport, rows: readonly PtqRow[]): string {
  const kind = ptqUnitKind(report);
  const name =
    report.method === 'gptq' ? 'GPTQ' : `${PTQ_LABEL[report.method]} (${report.iters ?? '?'} steps per ${kind.one})`;
  if (!rows.length) return `${name} changed no ${kind.one}: every layer kept round-to-nearest.`;
  // geometric mean of after/before: errors span orders of magnitude across layers
  const ratio = Math.exp(
    rows.reduce((s, r) => s + Math.log(Math.max(r.after, 1e-12) / Math.max(r.before, 1e-12)), 0) / rows.length,
  );
  const flips = rows.reduce((s, r) => s + r.flips, 0) / rows.length;
  const time = `Time: ${(report.gramSeconds + report.solveSeconds).toFixed(1)} s.`;
  if (!report.units)
    return `${name} reconstructed ${rows.length} layers: their output error is ${(100 * ratio).toFixed(0)}% of round-to-nearest's (geometric mean), with ${(100 * flips).toFixed(1)}% of weights rounded away from nearest on average. ${time}`;
  const kept = rows.filter((r) => r.keptEntry).length;
  const learned = report.learnActivations ? ' and activation step sizes' : '';
  const drop =
    report.dropProb !== undefined ? `, activation quantization dropped at ${Math.round(100 * report.dropProb)}%` : '';
  const keptText = kept ? ` ${kept} kept their entry (no lower error found).` : '';
  return `${name} trained the rounding${learned} of ${rows.length} ${rows.length === 1 ? kind.one : kind.many}${drop}: their output error is ${(100 * ratio).toFixed(0)}% of the error on entry (geometric mean), with ${(100 * flips).toFixed(1)}% of weights rounded away from nearest on average.${keptText} ${time}`;
}

/** One activation point's step size, calibrated and learned (the step-size chart's row). */
export interface StepRow {
  tensor: string;
  /** position in network order among the learned points */
  index: number;
  calibrated: number;
  learned: number;
  /** 100·(learned / calibrated − 1) */
  changePct: number;
  moved: boolean;
  /** the units that trained it */
  units: string[];
}

/** The learned activation step sizes (empty when the run learned none: the chart is hidden). */
export function stepRows(report: PtqReport): StepRow[] {
  return learnedSteps(report).map((s, index) => ({
    tensor: s.tensor,
    index,
    calibrated: s.calibrated,
    learned: s.learned,
    changePct: 100 * (s.ratio - 1),
    moved: stepMoved(s),
    units: s.units,
  }));
}

/** The step-size chart's caption: how many moved, the median and the largest change. */
export function stepSummary(report: PtqReport): string {
  return learnedStepsSummary(learnedSteps(report));
}
