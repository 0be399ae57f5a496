import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { QpError } from '../../src/lib/util/errors.ts';
import {
  cloneGraph,
  consumersOf,
  makeGraph,
  makeNode,
  makeTensor,
  makeValueInfo,
  producerOf,
  shapeOf,
  topoSort,
  NameAllocator,
} from '../../src/lib/onnx/ir.ts';
import { parseModel, serializeModel } from '../../src/lib/onnx/model.ts';
import { firstDiff, smallCnn } from '../support/onnx-helpers.ts';

const { onnx } = onnxProto;

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof QpError) return `${e.code}: ${e.message}`;
    return `not a QpError: ${String(e)}`;
  }
  return 'no error';
}

describe('parseModel errors', () => {
  it('rejects an empty file with MODEL_EMPTY', () => {
    expect(codeOf(() => parseModel(new Uint8Array(0)))).toMatch(/^MODEL_EMPTY: .*0 bytes/);
  });

  it('rejects a JPEG with MODEL_NOT_ONNX naming what it is', () => {
    const jpeg = new Uint8Array([
      0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x01, 0x00, 0x48,
    ]);
    const msg = codeOf(() => parseModel(jpeg));
    expect(msg).toMatch(/^MODEL_NOT_ONNX: File is not an ONNX model \(it looks like a JPEG image\)/);
    expect(msg).toContain('torch.onnx.export');
  });

  it('rejects a text file with MODEL_NOT_ONNX', () => {
    const txt = new TextEncoder().encode('hello, this is a plain text file\nwith two lines\n');
    expect(codeOf(() => parseModel(txt))).toMatch(/^MODEL_NOT_ONNX: .*text file/);
  });

  it('rejects a protobuf without graph or opset with MODEL_NOT_ONNX', () => {
    const bytes = onnx.ModelProto.encode({ irVersion: 7, producerName: 'x' }).finish();
    expect(codeOf(() => parseModel(bytes))).toMatch(/^MODEL_NOT_ONNX/);
  });

  it('rejects a graph without nodes with MODEL_NO_GRAPH', () => {
    const bytes = onnx.ModelProto.encode({
      irVersion: 7,
      opsetImport: [{ domain: '', version: 13 }],
      graph: { name: 'g' },
    }).finish();
    expect(codeOf(() => parseModel(bytes))).toMatch(/^MODEL_NO_GRAPH/);
  });

  it('reports a truncated file as MODEL_TRUNCATED', () => {
    const bytes = serializeModel(smallCnn());
    expect(bytes[0]).toBe(0x08);
    for (const frac of [0.3, 0.5, 0.9]) {
      expect(codeOf(() => parseModel(bytes.subarray(0, Math.floor(bytes.length * frac))))).toMatch(
        /^MODEL_TRUNCATED: .*download or export it again/,
      );
    }
  });

  it('reports external data with MODEL_EXTERNAL_DATA and how to fix it', () => {
    const bytes = onnx.ModelProto.encode({
      irVersion: 7,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'g',
        node: [{ opType: 'Add', input: ['x', 'w'], output: ['y'] }],
        initializer: [
          { name: 'w', dims: [1], dataType: 1, dataLocation: 1, externalData: [{ key: 'location', value: 'w.bin' }] },
        ],
        input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: 1 } } }],
      },
    }).finish();
    const msg = codeOf(() => parseModel(bytes));
    expect(msg).toMatch(/^MODEL_EXTERNAL_DATA: .*"w".*save_as_external_data=False/);
  });
});

describe('parseModel / serializeModel on a small graph', () => {
  it('round-trips structure, attributes, initializers and shapes', () => {
    const g = smallCnn();
    const g2 = parseModel(serializeModel(g));
    expect(g2.opset).toBe(13);
    expect(g2.nodes.map((n) => [n.name, n.opType, n.inputs, n.outputs])).toEqual(
      g.nodes.map((n) => [n.name, n.opType, n.inputs, n.outputs]),
    );
    const dw = g2.nodes.find((n) => n.name === 'dwconv')!;
    expect(dw.attrs).toEqual({ kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 4 });
    expect(dw.attrTypes).toEqual({ kernel_shape: 'ints', pads: 'ints', group: 'int' });
    const bn = g2.nodes.find((n) => n.name === 'bn1')!;
    expect(bn.attrTypes?.epsilon).toBe('float');
    expect(bn.attrs.epsilon).toBeCloseTo(1e-5, 10);
    expect([...g2.initializers.keys()]).toEqual([...g.initializers.keys()]);
    for (const [k, t] of g.initializers) {
      const t2 = g2.initializers.get(k)!;
      expect(t2.dims).toEqual(t.dims);
      expect(t2.dtype).toBe('float32');
      expect(firstDiff(t2.data as Float32Array, t.data as Float32Array)).toBe(-1);
    }
    expect(g2.inputs).toEqual([{ name: 'input', dtype: 'float32', shape: ['N', 3, 8, 8] }]);
    expect(shapeOf(g2, 'w2')).toEqual([4, 1, 3, 3]);
    expect(shapeOf(g2, 'output')).toEqual(['N', 5]);
    expect(shapeOf(g2, 'r1')).toBeNull();
  });

  it('decodes int64 and float-data initializers and drops initializers listed as inputs', () => {
    const bytes = onnx.ModelProto.encode({
      irVersion: 3,
      opsetImport: [{ domain: '', version: 9 }],
      graph: {
        name: 'old',
        node: [
          { opType: 'Reshape', input: ['x', 'shape'], output: ['r'] },
          { opType: 'Add', input: ['r', 'bias'], output: ['y'] },
        ],
        initializer: [
          { name: 'shape', dims: [2], dataType: 7, int64Data: [2, -1] },
          { name: 'bias', dims: [1], dataType: 1, floatData: [0.5] },
        ],
        input: [
          { name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 2 }, { dimValue: 3 }] } } } },
          { name: 'shape', type: { tensorType: { elemType: 7, shape: { dim: [{ dimValue: 2 }] } } } },
          { name: 'bias', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } },
        ],
        output: [{ name: 'y', type: { tensorType: { elemType: 1 } } }],
      },
    }).finish();
    const g = parseModel(bytes);
    expect(g.inputs.map((v) => v.name)).toEqual(['x']);
    expect([...(g.initializers.get('shape')!.data as BigInt64Array)]).toEqual([2n, -1n]);
    expect([...(g.initializers.get('bias')!.data as Float32Array)]).toEqual([0.5]);
    expect(g.outputs[0].shape).toBeNull();
    // re-serialized with raw data and IR ≥ 4 (initializers no longer listed as inputs)
    const g2 = parseModel(serializeModel(g));
    expect([...(g2.initializers.get('shape')!.data as BigInt64Array)]).toEqual([2n, -1n]);
    expect(g2.meta.irVersion).toBeGreaterThanOrEqual(4);
  });

  it('sorts nodes that the file lists out of order, and detects cycles', () => {
    const g = smallCnn();
    const shuffled = [...g.nodes].reverse();
    const sorted = topoSort({ ...g, nodes: shuffled });
    const pos = new Map(sorted.map((n, i) => [n.name, i]));
    const prod = producerOf(g);
    for (const n of sorted)
      for (const i of n.inputs) if (prod.has(i)) expect(pos.get(prod.get(i)!.name)!).toBeLessThan(pos.get(n.name)!);
    // parseModel sorts too
    const bytes = serializeModel({ ...g, nodes: shuffled });
    expect(parseModel(bytes).nodes.map((n) => n.name)).toEqual(g.nodes.map((n) => n.name));
    const cyc = [
      makeNode('Relu', ['b'], ['a'], {}, { name: 'n1' }),
      makeNode('Relu', ['a'], ['b'], {}, { name: 'n2' }),
    ];
    expect(codeOf(() => makeGraph({ inputs: [], outputs: [makeValueInfo('a', null)], nodes: cyc }))).toMatch(
      /^MODEL_UNSUPPORTED: .*cycle/,
    );
  });

  it('producerOf, consumersOf, NameAllocator, cloneGraph', () => {
    const g = smallCnn();
    expect(producerOf(g).get('r1')!.name).toBe('relu1');
    expect(
      consumersOf(g)
        .get('r1')!
        .map((n) => n.name),
    ).toEqual(['dwconv', 'add']);
    const names = new NameAllocator(g);
    expect(names.take('r1')).toBe('r1_1');
    expect(names.take('r1')).toBe('r1_2');
    expect(names.take('conv1')).toBe('conv1_1');
    expect(names.take('fresh')).toBe('fresh');
    const c = cloneGraph(g);
    (c.initializers.get('w1')!.data as Float32Array)[0] = 123;
    c.nodes[0].inputs[0] = 'x';
    c.inputs[0].shape![0] = 7;
    expect((g.initializers.get('w1')!.data as Float32Array)[0]).not.toBe(123);
    expect(g.nodes[0].inputs[0]).toBe('input');
    expect(g.inputs[0].shape![0]).toBe('N');
  });

  it('makeTensor checks the element count', () => {
    expect(codeOf(() => makeTensor('t', [2, 2], [1, 2, 3]))).toMatch(/^INTERNAL/);
  });
});
