/**
 * raiseOpset (src/lib/export/opset.ts): which attributes become inputs at which opset
 * (ONNX operator changelog: Squeeze/Unsqueeze/ReduceSum `axes` and Split `split` at 13,
 * the other reductions' `axes` only at 18, Split's `num_outputs` from 18), what is refused,
 * and that nothing else changes.
 */
import { describe, expect, it } from 'vitest';
import { raiseOpset } from '../../src/lib/export/opset.ts';
import { makeGraph, makeNode, makeValueInfo, type Graph, type Node } from '../../src/lib/onnx/ir.ts';
import { QpError } from '../../src/lib/util/errors.ts';

/** A graph of `node` (and `extra`); every tensor no node writes is a graph input. */
function oneNode(opset: number, node: Node, extra: Node[] = []): Graph {
  const nodes = [node, ...extra];
  const written = new Set(nodes.flatMap((n) => n.outputs));
  const read = [...new Set(nodes.flatMap((n) => n.inputs))].filter((t) => t && !written.has(t));
  return makeGraph({
    opset,
    inputs: read.map((t) => makeValueInfo(t, [1, 4, 3, 3])),
    outputs: [makeValueInfo(node.outputs[0], null)],
    initializers: [],
    nodes,
  });
}

const int64s = (g: Graph, name: string) => Array.from(g.initializers.get(name)!.data as BigInt64Array);

describe('raiseOpset: reductions', () => {
  const reduceMean = () =>
    makeNode('ReduceMean', ['x'], ['y'], { axes: [2, 3], keepdims: 1 }, { name: 'rm', attrTypes: { axes: 'ints' } });

  for (const target of [13, 17]) {
    it(`an opset-11 ReduceMean raised to ${target} keeps axes as an attribute (an input only from 18)`, () => {
      const g = oneNode(11, reduceMean());
      raiseOpset(g, target);
      expect(g.opset).toBe(target);
      expect(g.nodes[0].inputs).toEqual(['x']);
      expect(g.nodes[0].attrs).toEqual({ axes: [2, 3], keepdims: 1 });
      expect(g.nodes[0].attrTypes).toEqual({ axes: 'ints' });
      expect(g.initializers.size).toBe(0);
    });
  }

  it('an opset-11 ReduceMean raised to 18 gets axes as an int64 input named after the node', () => {
    const g = oneNode(11, reduceMean());
    raiseOpset(g, 18);
    expect(g.opset).toBe(18);
    expect(g.nodes[0].inputs).toEqual(['x', 'rm_axes']);
    expect(int64s(g, 'rm_axes')).toEqual([2n, 3n]);
    expect(g.initializers.get('rm_axes')!.dims).toEqual([2]);
    expect(g.nodes[0].attrs).toEqual({ keepdims: 1 });
    expect(g.nodes[0].attrTypes).toEqual({});
  });

  it('an opset-13 ReduceMax raised to 21 moves axes too (from < 18), an opset-18 one has nothing to move', () => {
    const g = oneNode(13, makeNode('ReduceMax', ['x'], ['y'], { axes: [1] }, { name: 'mx' }));
    raiseOpset(g, 21);
    expect(g.nodes[0].inputs).toEqual(['x', 'mx_axes']);
    expect(int64s(g, 'mx_axes')).toEqual([1n]);
    const h = oneNode(18, makeNode('ReduceMax', ['x', 'ax'], ['y'], {}, { name: 'mx' }));
    raiseOpset(h, 21);
    expect(h.nodes[0].inputs).toEqual(['x', 'ax']);
    expect(h.initializers.size).toBe(0);
  });

  it('ReduceSum, Squeeze and Unsqueeze take axes as an input from 13', () => {
    for (const op of ['ReduceSum', 'Squeeze', 'Unsqueeze']) {
      const g = oneNode(11, makeNode(op, ['x'], ['y'], { axes: [0] }, { name: '' }));
      raiseOpset(g, 13);
      // an unnamed node's input is named after its op
      expect(g.nodes[0].inputs, op).toEqual(['x', `${op}_axes`]);
      expect(int64s(g, `${op}_axes`)).toEqual([0n]);
      expect(g.nodes[0].attrs.axes).toBeUndefined();
    }
  });

  it('a ReduceSum over all axes (no attribute) stays as it is', () => {
    const g = oneNode(11, makeNode('ReduceSum', ['x'], ['y'], { keepdims: 0 }, { name: 'rs' }));
    raiseOpset(g, 13);
    expect(g.nodes[0].inputs).toEqual(['x']);
    expect(g.nodes[0].attrs).toEqual({ keepdims: 0 });
    expect(g.initializers.size).toBe(0);
  });

  it('a graph already at opset 13 keeps its ReduceSum untouched when raised further below 18', () => {
    const g = oneNode(13, makeNode('ReduceSum', ['x', 'ax'], ['y'], {}, { name: 'rs' }));
    raiseOpset(g, 17);
    expect(g.nodes[0].inputs).toEqual(['x', 'ax']);
    expect(g.opset).toBe(17);
  });
});

describe('raiseOpset: Split, Dropout, Softmax', () => {
  it('Split: sizes become an input at 13; num_outputs is added only from 18 and only without sizes', () => {
    const split = () =>
      makeNode('Split', ['x'], ['a', 'b'], { axis: 1, split: [1, 3] }, { name: 'sp', attrTypes: { split: 'ints' } });
    const g = oneNode(11, split());
    raiseOpset(g, 13);
    expect(g.nodes[0].inputs).toEqual(['x', 'sp_split']);
    expect(int64s(g, 'sp_split')).toEqual([1n, 3n]);
    expect(g.nodes[0].attrs).toEqual({ axis: 1 });

    const h = oneNode(11, split());
    raiseOpset(h, 18);
    expect(h.nodes[0].attrs).toEqual({ axis: 1 });

    const even = (opset: number) =>
      oneNode(opset, makeNode('Split', ['x'], ['a', 'b'], { axis: 1 }, { name: 'sp', attrTypes: { axis: 'int' } }));
    const at18 = even(11);
    raiseOpset(at18, 18);
    expect(at18.nodes[0].attrs).toEqual({ axis: 1, num_outputs: 2 });
    expect(at18.nodes[0].attrTypes).toEqual({ axis: 'int', num_outputs: 'int' });
    const at17 = even(13);
    raiseOpset(at17, 17);
    expect(at17.nodes[0].attrs).toEqual({ axis: 1 });
  });

  it('Dropout becomes an Identity of its first input and output', () => {
    const g = oneNode(
      11,
      makeNode('Dropout', ['x', 'ratio'], ['y', 'mask'], { seed: 3 }, { name: 'do', attrTypes: { seed: 'int' } }),
    );
    raiseOpset(g, 13);
    expect(g.nodes[0]).toMatchObject({ opType: 'Identity', inputs: ['x'], outputs: ['y'] });
    // no attribute left, nor the type of one (a writer would otherwise look for `seed`)
    expect(g.nodes[0].attrs).toEqual({});
    expect(g.nodes[0].attrTypes).toEqual({});
  });

  it('an opset-11 Softmax on the last axis (or -1) is kept; on another axis, or of unknown rank, it is refused', () => {
    const softmax = (axis: number | undefined, shape: number[] | null) =>
      makeGraph({
        opset: 11,
        inputs: [makeValueInfo('x', shape)],
        outputs: [makeValueInfo('y', null)],
        initializers: [],
        nodes: [makeNode('Softmax', ['x'], ['y'], axis === undefined ? {} : { axis })],
      });
    for (const [axis, shape] of [
      [3, [1, 2, 3, 4]],
      [-1, [1, 2, 3, 4]],
      [undefined, [2, 5]],
    ] as const) {
      const g = softmax(axis, [...shape]);
      expect(() => raiseOpset(g, 13), `axis ${axis}`).not.toThrow();
      expect(g.opset).toBe(13);
    }
    for (const [axis, shape] of [
      [1, [1, 2, 3, 4]],
      [undefined, [1, 2, 3, 4]],
      [1, null],
    ] as const) {
      const g = softmax(axis, shape ? [...shape] : null);
      expect(() => raiseOpset(g, 13), `axis ${axis}`).toThrow(/opset 11 and uses Softmax/);
    }
  });

  it('an opset-13 Softmax on any axis raises to 21', () => {
    const g = makeGraph({
      opset: 13,
      inputs: [makeValueInfo('x', null)],
      outputs: [makeValueInfo('y', null)],
      initializers: [],
      nodes: [makeNode('LogSoftmax', ['x'], ['y'], { axis: 1 })],
    });
    raiseOpset(g, 21);
    expect(g.opset).toBe(21);
  });
});

describe('raiseOpset: what it refuses and leaves alone', () => {
  it('refuses ops not known to keep their meaning, naming them sorted, with EXPORT_UNSUPPORTED', () => {
    const g = oneNode(11, makeNode('TopK', ['x', 'k'], ['y', 'i']), [
      makeNode('Upsample', ['y', 's'], ['z']),
      makeNode('Relu', ['z'], ['r']),
    ]);
    let err: unknown;
    try {
      raiseOpset(g, 13);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QpError);
    expect((err as QpError).code).toBe('EXPORT_UNSUPPORTED');
    expect((err as QpError).message).toMatch(/needs opset 13, but the model is at opset 11 and uses TopK, Upsample,/);
  });

  it('refuses such an op whatever the rank of its input (only Softmax is kept on its last axis)', () => {
    const g = makeGraph({
      opset: 11,
      inputs: [makeValueInfo('x', [2, 5]), makeValueInfo('k', [1], 'int64')],
      outputs: [makeValueInfo('y', null)],
      initializers: [],
      nodes: [makeNode('TopK', ['x', 'k'], ['y', 'i'])],
    });
    expect(() => raiseOpset(g, 13)).toThrow(/opset 11 and uses TopK, whose/);
  });

  it('leaves nodes of other domains alone (no refusal, no rewrite)', () => {
    const g = oneNode(
      11,
      makeNode('ReduceMean', ['x'], ['y'], { axes: [1] }, { name: 'custom', domain: 'com.example' }),
      [makeNode('MysteryOp', ['y'], ['z'], {}, { domain: 'com.example' })],
    );
    raiseOpset(g, 18);
    expect(g.nodes[0].attrs).toEqual({ axes: [1] });
    expect(g.nodes[0].inputs).toEqual(['x']);
    expect(g.opset).toBe(18);
  });

  it('accepts ops written in the explicit ai.onnx domain like the default one', () => {
    const g = oneNode(11, makeNode('Unsqueeze', ['x'], ['y'], { axes: [0] }, { name: 'u', domain: 'ai.onnx' }));
    raiseOpset(g, 13);
    expect(g.nodes[0].inputs).toEqual(['x', 'u_axes']);
    const bad = oneNode(11, makeNode('TopK', ['x'], ['y'], {}, { domain: 'ai.onnx' }));
    expect(() => raiseOpset(bad, 13)).toThrow(/uses TopK/);
  });

  it('does nothing to a graph already at or above the target', () => {
    const g = oneNode(13, makeNode('ReduceSum', ['x'], ['y'], { axes: [0] }, { name: 'rs' }));
    raiseOpset(g, 13);
    expect(g.opset).toBe(13);
    expect(g.nodes[0].attrs).toEqual({ axes: [0] });
    raiseOpset(g, 11);
    expect(g.opset).toBe(13);
    // nothing is checked or rewritten either: a Dropout stays, an op outside the list passes
    const h = oneNode(13, makeNode('Dropout', ['x'], ['y']), [makeNode('TopK', ['y', 'k'], ['z', 'i'])]);
    raiseOpset(h, 13);
    expect(h.nodes.map((n) => n.opType)).toEqual(['Dropout', 'TopK']);
  });

  it('raises an opset-9 graph through 11 first (Clip bounds become inputs), then to the target', () => {
    const g = oneNode(9, makeNode('Clip', ['x'], ['y'], { min: 0, max: 6 }, { name: 'clip' }));
    raiseOpset(g, 13);
    expect(g.opset).toBe(13);
    expect(g.nodes[0].inputs).toHaveLength(3);
    expect(g.nodes[0].attrs).toEqual({});
  });
});
