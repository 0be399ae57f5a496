import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseModel, serializeModel } from '../../src/lib/onnx/model.ts';
import {
  HAVE_MOBILENET,
  MOBILENET,
  NO_MOBILENET_MSG,
  firstDiff,
  mulberry32,
  randn,
  runBytes,
  runGraph,
  smallCnn,
} from '../support/onnx-helpers.ts';

describe('parseModel / serializeModel on a small graph', () => {
  it('runs on the engine after serialization', async () => {
    const g = smallCnn();
    const x = randn(mulberry32(5), 2 * 3 * 64);
    const out = await runGraph(g, { input: { data: x, dims: [2, 3, 8, 8] } });
    expect(out.output.dims).toEqual([2, 5]);
    expect(out.output.data.every(Number.isFinite)).toBe(true);
  });
});

describe.skipIf(!HAVE_MOBILENET)(`MobileNet-V2 round trip${HAVE_MOBILENET ? '' : ` (${NO_MOBILENET_MSG})`}`, () => {
  it('parse ∘ serialize keeps the graph and gives the same output on a random input', async () => {
    const bytes = new Uint8Array(readFileSync(MOBILENET));
    const g = parseModel(bytes);
    expect(g.opset).toBe(12);
    expect(g.nodes.length).toBe(101);
    expect(g.initializers.size).toBe(108);
    expect(g.inputs.map((v) => v.name)).toEqual(['input']);
    const again = serializeModel(g);
    const g2 = parseModel(again);
    expect(g2.nodes).toEqual(g.nodes);
    for (const [k, t] of g.initializers)
      expect(firstDiff(g2.initializers.get(k)!.data as Float32Array, t.data as Float32Array)).toBe(-1);

    const x = randn(mulberry32(42), 3 * 224 * 224);
    const feeds = { input: { data: x, dims: [1, 3, 224, 224] } };
    const a = await runBytes(bytes, feeds);
    const b = await runBytes(again, feeds);
    expect(a.output.dims).toEqual([1, 1000]);
    // same graph, same engine: bit-identical
    expect(firstDiff(a.output.data, b.output.data)).toBe(-1);
  });
});
