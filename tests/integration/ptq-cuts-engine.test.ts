import { describe, expect, it } from 'vitest';
import { cloneGraph, makeValueInfo } from '../../src/lib/onnx/ir.ts';
import { cutSegment } from '../../src/lib/ptq/cuts.ts';
import { mulberry32, randn, runGraph, smallCnn } from '../support/onnx-helpers.ts';

describe('cutSegment', () => {
  const g = smallCnn({ seed: 4 });
  const rng = mulberry32(9);
  const input = { data: randn(rng, 2 * 3 * 8 * 8), dims: [2, 3, 8, 8] };

  it('runs from a stored cut exactly as the whole model does', async () => {
    const withR1 = cloneGraph(g, { shareInitializers: true });
    withR1.outputs.push(makeValueInfo('r1', null));
    const full = await runGraph(withR1, { input }, ['r1', 'output']);
    const seg = cloneGraph(g, { shareInitializers: true });
    cutSegment(seg, [makeValueInfo('r1', [null, 4, 8, 8])], [makeValueInfo('output', [null, 5])]);
    expect(seg.nodes.map((n) => n.name)).toEqual(['dwconv', 'bn2', 'add', 'bn3', 'gap', 'flatten', 'fc']);
    expect(seg.initializers.has('w1')).toBe(false);
    const part = await runGraph(seg, { r1: full.r1 });
    // the same arithmetic; onnxruntime may fuse the two graphs differently, hence float tolerance
    part.output.data.forEach((v, i) =>
      expect(Math.abs(v - full.output.data[i])).toBeLessThan(1e-5 * (1 + Math.abs(v))),
    );
  });
});
