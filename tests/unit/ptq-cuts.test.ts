import { describe, expect, it } from 'vitest';
import { buildResNet18 } from '../../src/lib/models/builders.ts';
import { cloneGraph, makeNode, makeTensor, makeValueInfo, producerOf } from '../../src/lib/onnx/ir.ts';
import { parseModel } from '../../src/lib/onnx/model.ts';
import { cutSegment, latestCut, singleTensorCuts } from '../../src/lib/ptq/cuts.ts';
import { smallCnn } from '../support/onnx-helpers.ts';

describe('singleTensorCuts', () => {
  it('finds every gap where one tensor carries the whole state, none inside a skip connection', () => {
    // conv1 → bn1 → relu1 → dwconv → bn2 → add(relu1, bn2) → bn3 → gap → flatten → fc
    const g = smallCnn({ seed: 1 });
    const cuts = singleTensorCuts(g);
    expect(cuts.map((c) => c.tensor)).toEqual(['input', 'c1', 'c1bn', 'r1', 'sum', 'sumbn', 'gap', 'flat']);
    // the gaps are positions in the node list: the tensor's producer sits just before
    const pos = new Map(g.nodes.map((n, i) => [n.name, i]));
    const producer = producerOf(g);
    for (const c of cuts.slice(1)) expect(c.gap).toBe(pos.get(producer.get(c.tensor)!.name)! + 1);
  });

  it('does not let constants (Constant nodes and what follows from them alone) break a cut', () => {
    const g = smallCnn({ seed: 1 });
    const flatten = g.nodes.findIndex((n) => n.opType === 'Flatten');
    // replace Flatten by a Reshape whose shape comes from a Constant node placed early
    g.initializers.set('two', makeTensor('two', [2], [0n, -1n], 'int64'));
    g.nodes.splice(flatten, 1, makeNode('Reshape', ['gap', 'shape'], ['flat'], {}, { name: 'reshape' }));
    g.nodes.splice(1, 0, makeNode('Identity', ['two'], ['shape'], {}, { name: 'shape_id' }));
    expect(singleTensorCuts(g).map((c) => c.tensor)).toEqual([
      'input',
      'c1',
      'c1bn',
      'r1',
      'sum',
      'sumbn',
      'gap',
      'flat',
    ]);
  });

  it('finds the boundary of every residual block of ResNet-18', () => {
    const g = parseModel(buildResNet18(1));
    const producer = producerOf(g);
    const cuts = singleTensorCuts(g);
    // a block ends in Add → Relu; its output is the only tensor the next block reads
    const blockEnds = g.nodes
      .filter((n) => n.opType === 'Relu' && producer.get(n.inputs[0])?.opType === 'Add')
      .map((n) => n.outputs[0]);
    expect(blockEnds.length).toBe(8);
    const cutTensors = new Set(cuts.map((c) => c.tensor));
    for (const t of blockEnds) expect(cutTensors.has(t), t).toBe(true);
    // and nothing inside a block, where the skip connection is live beside the main path
    const pos = new Map(g.nodes.map((n, i) => [n, i]));
    for (const add of g.nodes.filter((n) => n.opType === 'Add')) {
      for (const t of add.inputs) {
        const born = pos.get(producer.get(t)!)! + 1;
        for (const c of cuts)
          expect(c.gap > born && c.gap <= pos.get(add)!, `${c.tensor} inside the block of ${add.name}`).toBe(false);
      }
    }
  });
});

describe('latestCut', () => {
  const cuts = [
    { gap: 0, tensor: 'a' },
    { gap: 3, tensor: 'b' },
    { gap: 7, tensor: 'c' },
  ];
  it('takes the last cut at or before the position that is usable', () => {
    expect(latestCut(cuts, 6)?.tensor).toBe('b');
    expect(latestCut(cuts, 7)?.tensor).toBe('c');
    expect(latestCut(cuts, 9, (c) => c.tensor !== 'c')?.tensor).toBe('b');
    expect(latestCut(cuts, 2, (c) => c.tensor !== 'a')).toBeUndefined();
  });
});

describe('cutSegment', () => {
  const g = smallCnn({ seed: 4 });

  it('says which tensor is missing when the inputs do not cut the graph', () => {
    const seg = cloneGraph(g, { shareInitializers: true });
    // the Add also reads r1, which c2 alone does not provide: the walk back reaches the model input
    expect(() => cutSegment(seg, [makeValueInfo('c2', [null, 4, 8, 8])], [makeValueInfo('sum', null)])).toThrow(
      /needs "input", which none of its inputs \(c2\)/,
    );
  });
});
