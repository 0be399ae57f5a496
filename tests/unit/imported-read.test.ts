/**
 * Reading quantized models (src/lib/imported/read.ts) on fixtures made here: our own QDQ
 * export of the small CNN (narrow signed, asymmetric unsigned, int4), the QDQ form
 * onnxruntime's quantizer writes, and its QOperator conversion. Grids and ranges read back
 * must be the ones written, bit for bit; what is not understood must be named.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { buildQdq, toDeployable } from '../../src/lib/export/index.ts';
import { intValues } from '../../src/lib/imported/ints.ts';
import { isQuantizedGraph, readImported, requireUnderstood } from '../../src/lib/imported/read.ts';
import { importedTable } from '../../src/lib/imported/table.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { type Graph, makeGraph, makeNode, makeTensor, makeValueInfo } from '../../src/lib/onnx/ir.ts';
import { parseModel, serializeModel } from '../../src/lib/onnx/model.ts';
import { QpError } from '../../src/lib/util/errors.ts';
import { engineFreeRun, ortStyleQdq, qdqToQOperator, smallRanges } from '../support/imported-fixtures.ts';
import { smallCnn } from '../support/onnx-helpers.ts';

const roundTrip = (g: Graph) => parseModel(serializeModel(g));

describe('reading our own QDQ export', () => {
  const cases = [
    ['TensorRT (narrow int8 activations)', { backend: 'tensorrt' }],
    ['Academic (uint8 activations)', { backend: 'academic' }],
    ['W4A4 (int4 / uint4, opset 21)', { backend: 'academic', wBits: 4, aBits: 4, firstLast8bit: false }],
  ] as const;
  for (const [label, over] of cases) {
    it(`${label}: every grid and range read back as simulated`, () => {
      const run = engineFreeRun(resolveConfig(over));
      const m = readImported(roundTrip(buildQdq(toDeployable(run)).graph));
      expect(m.format).toBe('qdq');
      expect(m.unsupported).toEqual([]);
      expect(m.skeleton.nodes.some((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear')).toBe(
        false,
      );
      expect(m.weights).toHaveLength(run.weights.length);
      for (const w of run.weights) {
        const got = m.weights.find((x) => x.node === w.point.node)!;
        expect(Array.from(got.qparams.scale)).toEqual(Array.from(w.qparams.scale));
        expect(Array.from(got.qparams.zeroPoint)).toEqual(Array.from(w.qparams.zeroPoint));
        expect(got.qparams.axis).toBe(w.qparams.axis);
        // the skeleton's weights are the simulated values (-0 and 0 alike)
        const plain = (a: ArrayLike<number>) => Array.from(a, (v) => v + 0);
        expect(plain(m.skeleton.initializers.get(got.initializer)!.data as Float32Array)).toEqual(plain(w.values));
      }
      expect(m.activations).toHaveLength(run.activations.length);
      for (const a of run.activations) {
        const got = m.activations.find((x) => x.tensor === a.point.tensor)!;
        expect(got, a.point.tensor).toBeDefined();
        expect([got.qparams.scale[0], got.qparams.zeroPoint[0], got.qparams.qmin, got.qparams.qmax]).toEqual([
          a.qparams.scale[0],
          a.qparams.zeroPoint[0],
          a.qparams.qmin,
          a.qparams.qmax,
        ]);
      }
      expect(importedTable(m)).toMatch(/Imported QDQ model: 3 quantized layer\(s\)/);
    });
  }
});

describe('reading the forms onnxruntime writes', () => {
  const f = foldBatchNorm(smallCnn()).graph;
  const qdq = roundTrip(ortStyleQdq(f, smallRanges()));
  const qop = roundTrip(qdqToQOperator(qdq));

  it('QDQ: uint8 activations with zero points, int8 symmetric per-channel weights, int32 biases', () => {
    const m = readImported(qdq);
    expect(m.format).toBe('qdq');
    expect(m.layers.map((l) => l.node)).toEqual(['conv1', 'dwconv', 'fc']);
    for (const l of m.layers) {
      expect(l.weight).toMatchObject({ storage: 'int8', symmetric: true, granularity: 'per-channel', narrow: true });
      expect(l.bias).toBe('int32');
      expect(l.input?.storage).toBe('uint8');
      expect(l.output?.storage).toBe('uint8');
    }
    // the input range [-2.1, 2.4] gives a zero point of round(2.1 / (4.5 / 255)) = 119
    expect(m.layers[0].input?.zeroPoint.min).toBe(119);
    // the Relu after the first conv is gone: that conv's output quantizer is the Relu's range
    expect(m.skeleton.nodes.some((n) => n.opType === 'Relu')).toBe(false);
    // logits are quantized too
    expect(m.activations.some((a) => a.tensor.startsWith('output'))).toBe(true);
  });

  it('QOperator: the same grids and ranges as the QDQ form it was converted from', () => {
    expect(qop.nodes.map((n) => n.opType)).toEqual(
      expect.arrayContaining(['QLinearConv', 'QLinearAdd', 'QLinearGlobalAveragePool', 'QGemm']),
    );
    const a = readImported(qdq);
    const b = readImported(qop);
    expect(b.format).toBe('qoperator');
    expect(b.unsupported).toEqual([]);
    for (const w of a.weights) {
      const v = b.weights.find((x) => x.node === w.node)!;
      expect(Array.from(v.codes)).toEqual(Array.from(w.codes));
      expect(Array.from(v.qparams.scale)).toEqual(Array.from(w.qparams.scale));
    }
    const key = (x: { qparams: { scale: Float32Array; zeroPoint: Int32Array } }) =>
      `${x.qparams.scale[0]}/${x.qparams.zeroPoint[0]}`;
    expect(b.activations.map(key).sort()).toEqual(a.activations.map(key).sort());
    // int32 biases dequantized at s_x·s_w: the skeletons agree
    for (const n of a.skeleton.nodes.filter((x) => x.opType === 'Conv')) {
      const m = b.skeleton.nodes.find((x) => x.name === n.name)!;
      const bias = (g: Graph, t: string) => Array.from(g.initializers.get(t)!.data as Float32Array);
      expect(bias(b.skeleton, m.inputs[2])).toEqual(bias(a.skeleton, n.inputs[2]));
    }
    expect(importedTable(b)).toMatch(/QLinearConv/);
  });

  it('tells a quantized graph from a float one', () => {
    expect(isQuantizedGraph(qdq)).toBe(true);
    expect(isQuantizedGraph(qop)).toBe(true);
    expect(isQuantizedGraph(f)).toBe(false);
    expect(readImported(f).format).toBe('float');
  });
});

describe('what is not understood', () => {
  it('dynamic quantization is listed with the reason and refused for matching', () => {
    const g = makeGraph({
      inputs: [makeValueInfo('x', ['N', 4])],
      outputs: [makeValueInfo('y', ['N', 2])],
      initializers: [makeTensor('w', [4, 2], [1, 2, 3, 4, 5, 6, 7, 8], 'int8')],
      nodes: [
        makeNode('DynamicQuantizeLinear', ['x'], ['xq', 'xs', 'xz'], {}, { name: 'dq' }),
        makeNode('MatMulInteger', ['xq', 'w', 'xz'], ['yi'], {}, { name: 'mm' }),
        makeNode('Cast', ['yi'], ['y'], { to: 1 }, { name: 'cast' }),
      ],
    });
    const m = readImported(g);
    expect(m.unsupported.map((u) => u.opType)).toEqual(['DynamicQuantizeLinear', 'MatMulInteger']);
    expect(m.unsupported[0].reason).toMatch(/dynamic quantization computes its activation scales at run time/);
    expect(() => requireUnderstood(m, 'compared with its parent')).toThrow(QpError);
    expect(() => requireUnderstood(m, 'compared with its parent')).toThrow(/2 node\(s\) are not understood/);
  });

  it('a non-positive scale is a clear error', () => {
    const g = makeGraph({
      inputs: [makeValueInfo('x', ['N', 4])],
      outputs: [makeValueInfo('y', ['N', 4])],
      initializers: [makeTensor('s', [], [0]), makeTensor('z', [], [0], 'uint8')],
      nodes: [
        makeNode('QuantizeLinear', ['x', 's', 'z'], ['q'], {}, { name: 'q' }),
        makeNode('DequantizeLinear', ['q', 's', 'z'], ['y'], {}, { name: 'd' }),
      ],
    });
    expect(() => readImported(g)).toThrow(/scales must be positive finite numbers/);
  });

  it('int4 codes are unpacked low nibble first and sign-extended', () => {
    const t = { name: 'w', dtype: 'other' as const, onnxType: 22, dims: [3], data: Uint8Array.of(0x9f, 0x07) };
    expect(Array.from(intValues(t))).toEqual([-1, -7, 7]);
    expect(Array.from(intValues({ ...t, onnxType: 21 }))).toEqual([15, 9, 7]);
  });
});
