import { describe, expect, it } from 'vitest';
import type { PlacementRules } from '../../src/lib/config/types.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { makeGraph, makeNode, makeTensor, makeValueInfo } from '../../src/lib/onnx/ir.ts';
import { findQuantPoints, ALL_PLACEMENT } from '../../src/lib/onnx/placement.ts';
import { smallCnn } from '../support/onnx-helpers.ts';

const CONV_GEMM: PlacementRules = { conv: true, gemm: true, add: false, pool: false, concat: false, modelInput: false };

describe('findQuantPoints on a small graph', () => {
  const g = foldBatchNorm(smallCnn()).graph;

  it('conv+gemm: conv data inputs and the classifier input, with weight axes', () => {
    const p = findQuantPoints(g, CONV_GEMM);
    expect(p.activations.map((a) => a.tensor)).toEqual(['input', 'r1', 'flat']);
    expect(p.activations[0]).toEqual({
      tensor: 'input',
      consumers: ['conv1'],
      reasons: ['Conv input'],
      rules: ['conv'],
      firstLayerInput: true,
      lastLayerInput: false,
    });
    expect(p.activations[2].lastLayerInput).toBe(true);
    expect(p.weights).toEqual([
      { initializer: 'w1', node: 'conv1', opType: 'Conv', axis: 0, isFirst: true, isLast: false, depthwise: false },
      { initializer: 'w2', node: 'dwconv', opType: 'Conv', axis: 0, isFirst: false, isLast: false, depthwise: true },
      { initializer: 'wfc', node: 'fc', opType: 'Gemm', axis: 0, isFirst: false, isLast: true, depthwise: false },
    ]);
    expect(p.unquantizedOps).toEqual([]);
  });

  it('all rules: adds Add inputs (deduped with the Conv input), pool input, in network order', () => {
    const p = findQuantPoints(g, ALL_PLACEMENT);
    expect(p.activations.map((a) => a.tensor)).toEqual(['input', 'r1', 'b2', 'sumbn', 'flat']);
    const r1 = p.activations.find((a) => a.tensor === 'r1')!;
    expect(r1.consumers).toEqual(['dwconv', 'add']);
    expect(r1.reasons).toEqual(['Conv input', 'Add input']);
    expect(r1.rules).toEqual(['conv', 'add']);
    expect(p.activations.find((a) => a.tensor === 'sumbn')!.reasons).toEqual(['GlobalAveragePool input']);
  });

  it('gemm off: the classifier is reported unquantized; unknown ops too', () => {
    const p = findQuantPoints(g, { ...CONV_GEMM, gemm: false });
    expect(p.activations.map((a) => a.tensor)).toEqual(['input', 'r1']);
    expect(p.weights.map((w) => w.initializer)).toEqual(['w1', 'w2']);
    expect(p.weights[1].isLast).toBe(true);
    expect(p.unquantizedOps).toEqual(['Gemm']);
  });

  it('MatMul weights use axis 1; shape arithmetic and initializers are not activation points', () => {
    const h = makeGraph({
      inputs: [makeValueInfo('x', [2, 4, 1, 1])],
      outputs: [makeValueInfo('y', null)],
      initializers: [
        makeTensor('W', [4, 3], new Float32Array(12)),
        makeTensor('one', [1], [0n], 'int64'),
        makeTensor('c', [1], [1]),
      ],
      nodes: [
        makeNode('Shape', ['x'], ['s'], {}, { name: 'shape' }),
        makeNode('Gather', ['s', 'one'], ['n'], { axis: 0 }, { name: 'gather' }),
        makeNode('Concat', ['n', 'one'], ['shp'], { axis: 0 }, { name: 'concat_shape' }),
        makeNode('Concat', ['x', 'x'], ['xx'], { axis: 1 }, { name: 'concat_x' }),
        makeNode('Reshape', ['x', 'shp'], ['flat'], {}, { name: 'reshape' }),
        makeNode('Add', ['flat', 'c'], ['flat2'], {}, { name: 'addc' }),
        makeNode('MatMul', ['flat2', 'W'], ['y'], {}, { name: 'mm' }),
        makeNode('LSTM', ['xx'], ['unused'], {}, { name: 'lstm' }),
      ],
    });
    const p = findQuantPoints(h, ALL_PLACEMENT);
    expect(p.activations.map((a) => a.tensor)).toEqual(['x', 'flat', 'flat2']);
    expect(p.activations[0].reasons).toEqual(['model input', 'Concat input']);
    expect(p.activations[0].rules).toEqual(['modelInput', 'concat']);
    expect(p.weights).toEqual([
      { initializer: 'W', node: 'mm', opType: 'MatMul', axis: 1, isFirst: true, isLast: true, depthwise: false },
    ]);
    expect(p.unquantizedOps).toEqual(['LSTM']);
  });
});
