import { describe, expect, it } from 'vitest';
import { learnedSteps, learnedStepsSummary, stepMoved } from '../../src/lib/experiment/learned-steps.ts';
import { ptqTable } from '../../src/lib/experiment/report.ts';
import { stepRows, stepSummary } from '../../src/lib/state/ptq-view.ts';
import type { PtqReport, PtqUnitReport } from '../../src/lib/protocol/ptq.ts';

const unit = (name: string, scales: PtqUnitReport['scales'], extra: Partial<PtqUnitReport> = {}): PtqUnitReport => ({
  name,
  layers: [name],
  errorBefore: 0.2,
  errorAfter: 0.1,
  scales,
  seconds: 1,
  ...extra,
});

// AdaRound with learned ranges, per-layer units: `x` is read by two layers (learned twice,
// the second from the first's result), `y` by one, `z` kept its entry (before = after)
const report: PtqReport = {
  method: 'adaround',
  iters: 200,
  gramSeconds: 1,
  solveSeconds: 2,
  learnActivations: true,
  layers: [],
  units: [
    unit('Conv_0', [], { skipped: '8-bit layers keep round-to-nearest', errorBefore: NaN, errorAfter: NaN }),
    unit('Conv_1', [{ tensor: 'x', before: 0.5, after: 0.55 }]),
    unit('Conv_2', [
      { tensor: 'x', before: 0.55, after: 0.6 },
      { tensor: 'y', before: 0.25, after: 0.21 },
    ]),
    unit('Conv_3', [{ tensor: 'z', before: 0.125, after: 0.125 }], { keptEntry: true }),
  ],
};

describe('learned activation step sizes per point', () => {
  it('take the calibrated step from the first unit that reads a point and the learned one from the last', () => {
    const steps = learnedSteps(report);
    expect(steps.map((s) => [s.tensor, s.calibrated, s.learned, s.units])).toEqual([
      ['x', 0.5, 0.6, ['Conv_1', 'Conv_2']],
      ['y', 0.25, 0.21, ['Conv_2']],
      ['z', 0.125, 0.125, ['Conv_3']],
    ]);
    expect(steps[0].ratio).toBeCloseTo(1.2, 12);
    expect(steps.map(stepMoved)).toEqual([true, true, false]);
  });

  it('are empty for reports without units and for results stored before units existed', () => {
    expect(learnedSteps(undefined)).toEqual([]);
    expect(learnedSteps({ units: undefined })).toEqual([]);
    expect(learnedSteps({ ...report, units: [unit('Conv_1', [])] })).toEqual([]);
    expect(learnedStepsSummary([])).toBe('No activation step size was learned.');
  });

  it('compare in float32, as the simulation uses the steps', () => {
    // 0.1 and its float32 rounding are the same step for the fake-quant graph
    expect(stepMoved({ calibrated: 0.1, learned: Math.fround(0.1) })).toBe(false);
    expect(stepMoved({ calibrated: 0.1, learned: 0.1 * (1 + 1e-6) })).toBe(true);
  });

  it('summarise how many moved, the median and the largest change', () => {
    // moved: x +20%, y −16% → median 18.0, largest x
    expect(learnedStepsSummary(learnedSteps(report))).toBe(
      '2 of 3 learned activation step sizes moved from calibration: median change 18.0%, largest +20.0% (x).',
    );
    const still = { ...report, units: [report.units![3]] };
    expect(learnedStepsSummary(learnedSteps(still))).toBe(
      '1 activation step size(s) trained; none moved from its calibrated value.',
    );
  });

  it('reach the chart rows and the CLI table', () => {
    expect(stepRows(report).map((r) => [r.tensor, r.index, +r.changePct.toFixed(6), r.moved])).toEqual([
      ['x', 0, 20, true],
      ['y', 1, -16, true],
      ['z', 2, 0, false],
    ]);
    expect(stepSummary(report)).toBe(learnedStepsSummary(learnedSteps(report)));
    expect(ptqTable(report).split('\n').at(-1)).toBe(learnedStepsSummary(learnedSteps(report)));
    // a unit's median step time in milliseconds, '-' where it was not timed
    const timed = { ...report, units: [unit('Conv_1', [], { stepSeconds: 0.0425 })] };
    expect(ptqTable(timed).split('\n')[0]).toMatch(/ms\/step$/);
    expect(ptqTable(timed).split('\n')[2]).toMatch(/ 43$/);
    expect(ptqTable(report).split('\n')[2]).toMatch(/ -$/);
    // no learned steps: the table ends with its last row, as before
    expect(ptqTable({ ...report, units: [report.units![0]] })).not.toContain('step sizes moved');
  });
});
