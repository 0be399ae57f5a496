/**
 * Serializing tensors whose data is a view into a larger buffer (a subarray with a byte
 * offset and a shorter length, as sliced weights or fix outputs can be): the writer must
 * store exactly the view's bytes, never the whole backing buffer or its start, and the
 * model must read back and run with those values.
 */
import { describe, expect, it } from 'vitest';
import { makeGraph, makeNode, makeTensor, makeValueInfo } from '../../src/lib/onnx/ir.ts';
import { parseModel, serializeModel } from '../../src/lib/onnx/model.ts';
import { runGraph } from '../support/onnx-helpers.ts';

describe('serializeModel with tensor views', () => {
  const backing = Float32Array.from({ length: 20 }, (_, i) => i * 0.5 - 3); // -3, -2.5, ...
  const bias = backing.subarray(5, 9); // offset 20 bytes, 4 values: -0.5, 0, 0.5, 1
  const ints = BigInt64Array.from([9n, 8n, 7n, 2n, 2n, 6n]).subarray(3, 5); // [2, 2]
  const bytes = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]).subarray(2, 5); // [3, 4, 5]

  const graph = () =>
    makeGraph({
      opset: 13,
      inputs: [makeValueInfo('x', ['N', 4])],
      outputs: [makeValueInfo('y', [2, 2])],
      initializers: [
        makeTensor('b', [4], bias),
        makeTensor('shape', [2], ints, 'int64'),
        makeTensor('u8', [3], bytes, 'uint8'),
      ],
      nodes: [
        makeNode('Add', ['x', 'b'], ['s'], {}, { name: 'add' }),
        makeNode('Reshape', ['s', 'shape'], ['y'], {}, { name: 'reshape' }),
      ],
    });

  it('writes exactly the viewed values of float32, int64 and uint8 views', () => {
    expect(bias.byteOffset).toBe(20);
    const back = parseModel(serializeModel(graph()));
    expect(Array.from(back.initializers.get('b')!.data as Float32Array)).toEqual([-0.5, 0, 0.5, 1]);
    expect(Array.from(back.initializers.get('shape')!.data as BigInt64Array)).toEqual([2n, 2n]);
    expect(Array.from(back.initializers.get('u8')!.data as Uint8Array)).toEqual([3, 4, 5]);
    expect(back.initializers.get('b')!.dims).toEqual([4]);
  });

  it('runs with the viewed bias on the engine', async () => {
    const out = await runGraph(graph(), { x: { data: new Float32Array([1, 1, 1, 1]), dims: [1, 4] } }, ['y']);
    expect(Array.from(out.y.data)).toEqual([0.5, 1, 1.5, 2]);
  });

  it('does not change when the view is serialized again after a round trip', () => {
    const once = serializeModel(graph());
    expect(serializeModel(parseModel(once))).toEqual(once);
  });
});
