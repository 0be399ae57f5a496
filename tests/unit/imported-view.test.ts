/**
 * The rows the imported-model panel shows (state/imported-view.ts): the per-layer table of a
 * quantized file, the comparison with its parent, the bits the graph marks and the picker's
 * summary.
 */
import { describe, expect, it } from 'vitest';
import type { ImportedComparison, ImportedLayerInfo, QuantDescription } from '../../src/lib/protocol/imported.ts';
import {
  comparisonRows,
  db,
  g3,
  importedBits,
  importedLayerRows,
  quantizedSummary,
} from '../../src/lib/state/imported-view.ts';

const q = (over: Partial<QuantDescription>): QuantDescription => ({
  storage: 'int8',
  bits: 8,
  signed: true,
  symmetric: true,
  narrow: true,
  qmin: -127,
  qmax: 127,
  granularity: 'per-channel',
  axis: 0,
  channels: 16,
  scale: { min: 0.00123, max: 0.0456 },
  zeroPoint: { min: 0, max: 0 },
  range: { min: -5.79, max: 5.79 },
  ...over,
});

const conv: ImportedLayerInfo = {
  node: 'conv1',
  opType: 'QLinearConv',
  label: 'stem · conv 3×3',
  weight: { ...q({}), tensor: 'w', dims: [16, 3, 3, 3], storedAs: 'integer' },
  input: {
    ...q({ storage: 'uint8', signed: false, symmetric: false, narrow: false, qmin: 0, qmax: 255 }),
    granularity: 'per-tensor',
    range: { min: -2.1, max: 2.6 },
    tensor: 'x',
    origin: 'q_x',
  },
  output: null,
  bias: 'int32',
};
const fc: ImportedLayerInfo = {
  node: 'fc',
  opType: 'Gemm',
  label: 'classifier',
  weight: null,
  input: null,
  output: null,
  bias: 'float',
};

describe('imported-view', () => {
  it('writes one row per layer with bits, sign, symmetry, granularity, scales, zero points, activations', () => {
    const [a, b] = importedLayerRows([conv, fc]);
    expect(a).toEqual({
      node: 'conv1',
      label: 'stem · conv 3×3',
      opType: 'QLinearConv',
      bits: '8',
      signed: 'yes',
      symmetric: 'yes',
      granularity: 'per channel (16)',
      scales: '0.00123 … 0.0456',
      zeroPoints: '0',
      input: 'uint8, range -2.10 … 2.60',
      output: 'float',
    });
    expect(b.bits).toBe('float');
    expect(b.scales).toBe('–');
    const t = importedLayerRows([
      { ...conv, weight: { ...conv.weight!, ...q({ granularity: 'per-tensor', zeroPoint: { min: -3, max: 4 } }) } },
    ])[0];
    expect(t.granularity).toBe('per tensor');
    expect(t.zeroPoints).toBe('-3 … 4');
  });

  it('formats numbers with three digits and SQNR with one decimal', () => {
    expect(g3(0)).toBe('0');
    expect(g3(1.23456)).toBe('1.23');
    expect(g3(0.0000123)).toBe('1.23e-5');
    expect(db(null)).toBe('–');
    expect(db({ sqnrDb: Infinity, cosine: 1, mse: 0 })).toBe('∞');
    expect(db({ sqnrDb: 31.26, cosine: 1, mse: 0 })).toBe('31.3');
  });

  it('marks imported bits under the file’s names and, once compared, the parent’s', () => {
    expect([...importedBits([conv, fc])]).toEqual([['conv1', 8]]);
    const c = {
      comparison: {
        layers: [
          { parent: 'Conv_0', imported: 'conv1', label: '', codeAgreement: 1, fileAccumulated: null, simulated: null },
        ],
      },
    } as unknown as ImportedComparison;
    expect(importedBits([conv, fc], c).get('Conv_0')).toBe(8);
    const [row] = comparisonRows(c);
    expect(row).toMatchObject({ parent: 'Conv_0', imported: 'conv1', file: '–', weight: '–', codes: '100.0%' });
  });

  it('summarises a file for the model picker', () => {
    expect(quantizedSummary({ format: 'qoperator', layers: [conv, fc], activations: 5 })).toBe(
      'QOperator: 1 of 2 layers quantized (8-bit weights), 5 activation quantizers',
    );
    const four = { ...conv, node: 'c4', weight: { ...conv.weight!, bits: 4 } };
    expect(quantizedSummary({ format: 'qdq', layers: [conv, four], activations: 0 })).toMatch(
      /QDQ: 2 of 2 .*\(4\/8-bit/,
    );
  });
});
