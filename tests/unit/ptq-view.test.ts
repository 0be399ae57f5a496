import { describe, expect, it } from 'vitest';
import { errorSeries, ptqRows, ptqSummary } from '../../src/lib/state/ptq-view.ts';
import type { PtqReport } from '../../src/lib/protocol/ptq.ts';

const report: PtqReport = {
  method: 'adaround',
  iters: 300,
  gramSeconds: 2,
  solveSeconds: 3,
  layers: [
    {
      node: 'Conv_0',
      initializer: 'w0',
      bits: 8,
      errorBefore: NaN,
      errorAfter: NaN,
      flips: 0,
      seconds: 0,
      skipped: '8-bit layers keep round-to-nearest',
    },
    { node: 'Conv_2', initializer: 'w2', bits: 4, errorBefore: 0.04, errorAfter: 0.01, flips: 0.1, seconds: 1 },
    { node: 'Conv_4', initializer: 'w4', bits: 4, errorBefore: 0.2, errorAfter: 0.2, flips: 0.3, seconds: 1 },
  ],
};

describe('ptq view helpers', () => {
  it('keep only reconstructed layers, in network order, and pair before/after per layer', () => {
    const rows = ptqRows(report);
    expect(rows.map((r) => [r.node, r.index, r.before, r.after, r.flips])).toEqual([
      ['Conv_2', 0, 0.04, 0.01, 0.1],
      ['Conv_4', 1, 0.2, 0.2, 0.3],
    ]);
    expect(errorSeries(rows)).toEqual([
      { node: 'Conv_2', which: 'round-to-nearest', error: 0.04 },
      { node: 'Conv_2', which: 'after', error: 0.01 },
      { node: 'Conv_4', which: 'round-to-nearest', error: 0.2 },
      { node: 'Conv_4', which: 'after', error: 0.2 },
    ]);
  });

  it('summarise the error ratio as a geometric mean and the mean flip share', () => {
    // ratios 0.25 and 1 → geometric mean 0.5; flips (10% + 30%) / 2 = 20%
    expect(ptqSummary(report, ptqRows(report))).toBe(
      "AdaRound (300 steps per layer) reconstructed 2 layers: their output error is 50% of round-to-nearest's (geometric mean), with 20.0% of weights rounded away from nearest on average. Time: 5.0 s.",
    );
    expect(ptqSummary({ ...report, method: 'gptq', layers: [report.layers[0]] }, [])).toBe(
      'GPTQ changed no layer: every layer kept round-to-nearest.',
    );
  });
});
