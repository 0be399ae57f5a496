import { describe, expect, it } from 'vitest';
import { errorSeries, ptqRows, ptqSummary, ptqUnitKind } from '../../src/lib/state/ptq-view.ts';
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

  // QDrop on three units: an 8-bit stem (skipped), a block of two 4-bit layers, a block
  // that kept its entry; the report's layers carry each layer's flips
  const blocks: PtqReport = {
    method: 'qdrop',
    iters: 200,
    gramSeconds: 1,
    solveSeconds: 9,
    learnActivations: true,
    dropProb: 0.5,
    layers: [
      { ...report.layers[0] },
      { node: 'Conv_2', initializer: 'w2', bits: 4, errorBefore: NaN, errorAfter: NaN, flips: 0.1, seconds: 1 },
      { node: 'Conv_4', initializer: 'w4', bits: 4, errorBefore: NaN, errorAfter: NaN, flips: 0.3, seconds: 1 },
      { node: 'Conv_6', initializer: 'w6', bits: 4, errorBefore: NaN, errorAfter: NaN, flips: 0, seconds: 1 },
    ],
    units: [
      {
        name: 'Conv_0',
        layers: ['Conv_0'],
        errorBefore: NaN,
        errorAfter: NaN,
        scales: [],
        seconds: 0,
        skipped: '8-bit layers keep round-to-nearest',
      },
      { name: 'Conv_2…Add_5', layers: ['Conv_2', 'Conv_4'], errorBefore: 0.4, errorAfter: 0.1, scales: [], seconds: 4 },
      {
        name: 'Conv_6',
        layers: ['Conv_6'],
        errorBefore: 0.2,
        errorAfter: 0.2,
        scales: [],
        seconds: 1,
        keptEntry: true,
      },
    ],
  };

  it("with units, chart the trained units: their error on entry and after, their layers' mean flips", () => {
    const rows = ptqRows(blocks);
    expect(rows).toEqual([
      { node: 'Conv_2…Add_5', index: 0, bits: 4, before: 0.4, after: 0.1, flips: 0.2 },
      { node: 'Conv_6', index: 1, bits: 4, before: 0.2, after: 0.2, flips: 0, keptEntry: true },
    ]);
    expect(ptqUnitKind(blocks)).toEqual({ one: 'block', many: 'blocks', before: 'on entry' });
    expect(ptqUnitKind({ ...blocks, method: 'adaround' }).one).toBe('layer');
    expect(ptqUnitKind(report)).toEqual({ one: 'layer', many: 'layers', before: 'round-to-nearest' });
    expect(errorSeries(rows, 'on entry').slice(0, 2)).toEqual([
      { node: 'Conv_2…Add_5', which: 'on entry', error: 0.4 },
      { node: 'Conv_2…Add_5', which: 'after', error: 0.1 },
    ]);
    // ratios 0.25 and 1 → geometric mean 0.5; flips (20% + 0%) / 2 = 10%
    expect(ptqSummary(blocks, rows)).toBe(
      'QDrop (200 steps per block) trained the rounding and activation step sizes of 2 blocks, activation quantization dropped at 50%: their output error is 50% of the error on entry (geometric mean), with 10.0% of weights rounded away from nearest on average. 1 kept their entry (no lower error found). Time: 10.0 s.',
    );
  });
});
