/**
 * Per activation quantization point, the calibrated step size and the one a reconstruction
 * learned (BRECQ, QDrop, AdaRound with learned activation ranges), read from the run's
 * PtqReport. The report already keeps each trained unit's step sizes on entry and after
 * (PtqUnitReport.scales), which is what the stored result holds: a point read by several
 * units (a tensor two layers read, in AdaRound's per-layer units) is learned again by each,
 * from where the previous one left it, so its calibrated step is the first unit's entry and
 * its learned step the last unit's result. Deriving the per-point view here keeps the stored
 * result as it is (no second copy of the same numbers, no schema change), and results stored
 * before this view existed show it too. Pure: plain data in and out.
 */
import type { PtqReport } from '../protocol/ptq.ts';
import { median } from '../util/median.ts';

export interface LearnedStep {
  /** the activation tensor the quantizer sits on */
  tensor: string;
  /** step size from calibration (the first unit's entry) */
  calibrated: number;
  /** step size the evaluated (and exported) model uses (the last unit's result) */
  learned: number;
  /** learned / calibrated */
  ratio: number;
  /** the units (first…last node) that trained it, in network order */
  units: string[];
}

/**
 * The learned step sizes of a reconstruction, one per activation point, in the order the
 * units first read them (network order). Empty when the report has no units or no unit
 * learned a step size (calibrated ranges, GPTQ, AdaRound without learned ranges).
 */
export function learnedSteps(report: Pick<PtqReport, 'units'> | undefined): LearnedStep[] {
  const byTensor = new Map<string, LearnedStep>();
  for (const u of report?.units ?? []) {
    for (const s of u.scales) {
      const seen = byTensor.get(s.tensor);
      if (seen) {
        seen.learned = s.after;
        seen.ratio = s.after / seen.calibrated;
        seen.units.push(u.name);
      } else {
        byTensor.set(s.tensor, {
          tensor: s.tensor,
          calibrated: s.before,
          learned: s.after,
          ratio: s.after / s.before,
          units: [u.name],
        });
      }
    }
  }
  return [...byTensor.values()];
}

/** Whether a step moved: float32 values compared bit for bit, as the simulation uses them. */
export function stepMoved(s: Pick<LearnedStep, 'calibrated' | 'learned'>): boolean {
  return Math.fround(s.learned) !== Math.fround(s.calibrated);
}

/**
 * One line for a table footer or the results view: how many step sizes were learned, how
 * many moved, the median and the largest change in percent (of the calibrated step).
 */
export function learnedStepsSummary(steps: readonly LearnedStep[]): string {
  if (!steps.length) return 'No activation step size was learned.';
  const moved = steps.filter(stepMoved);
  if (!moved.length) return `${steps.length} activation step size(s) trained; none moved from its calibrated value.`;
  const pct = (r: number) => 100 * (r - 1);
  const mid = median(moved.map((s) => Math.abs(pct(s.ratio))));
  const largest = moved.reduce((a, b) => (Math.abs(pct(b.ratio)) > Math.abs(pct(a.ratio)) ? b : a));
  const signed = pct(largest.ratio);
  return `${moved.length} of ${steps.length} learned activation step sizes moved from calibration: median change ${mid.toFixed(1)}%, largest ${signed >= 0 ? '+' : ''}${signed.toFixed(1)}% (${largest.tensor}).`;
}
