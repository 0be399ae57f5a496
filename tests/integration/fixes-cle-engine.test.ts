import { describe, expect, it } from 'vitest';
import { chain, f32 } from '../support/cle-chain.ts';
import { absorbHighBias, equalize } from '../../src/lib/corrections/cle.ts';
import { makeValueInfo, type Graph } from '../../src/lib/onnx/ir.ts';
import { maxAbs, maxAbsDiff, mulberry32, randn, runGraph } from '../support/onnx-helpers.ts';

function input(seed = 7, scale = 1) {
  const rng = mulberry32(seed);
  return { input: { data: randn(rng, 2 * 3 * 36, scale), dims: [2, 3, 6, 6] } };
}

// Float error: rescaling reorders nothing but rounds each weight once more to float32,
// so outputs move by a few ulps of the output scale; 1e-5 relative is ~100 ulps.
const TOL = 1e-5;

describe('equalize', () => {
  it('keeps the float outputs of a ReLU network and leaves the input graph untouched', async () => {
    const g = chain('relu');
    const w1 = f32(g, 'w1').slice();
    const { graph, sweeps } = equalize(g, { relu6: 'relu' });
    expect(sweeps).toBeGreaterThan(1);
    expect(maxAbsDiff(f32(g, 'w1'), w1)).toBe(0);
    const x = input();
    const [a, b] = [await runGraph(g, x), await runGraph(graph, x)];
    expect(maxAbsDiff(a.output.data, b.output.data)).toBeLessThan(TOL * Math.max(1, maxAbs(a.output.data)));
  });

  it("ReLU6: mode 'relu' replaces the Clip and is exact while activations stay below 6; 'keep' keeps it and is not", async () => {
    const g = chain('relu6', 2);
    const x = input(7, 0.01);
    g.outputs.push(makeValueInfo('c1', ['N', 8, 6, 6]));
    const ref = await runGraph(g, x, ['output', 'c1']);
    expect(maxAbs(ref.c1.data)).toBeLessThan(6); // ReLU6 acts as ReLU on this input
    g.outputs.pop();
    const relu = equalize(g, { relu6: 'relu' }).graph;
    expect(relu.nodes.find((n) => n.name === 'act1')!.opType).toBe('Relu');
    const r = await runGraph(relu, x);
    expect(maxAbsDiff(ref.output.data, r.output.data)).toBeLessThan(TOL * Math.max(1, maxAbs(ref.output.data)));
    const keep = equalize(g, { relu6: 'keep' }).graph;
    expect(keep.nodes.find((n) => n.name === 'act1')!.opType).toBe('Clip');
    // channels scaled up by 1/s > 1 now clip at 6·s in the original units: outputs change
    const big = input(7, 3);
    const [refBig, keepBig] = [await runGraph(g, big), await runGraph(keep, big)];
    expect(maxAbsDiff(refBig.output.data, keepBig.output.data)).toBeGreaterThan(1e-3 * maxAbs(refBig.output.data));
  });
});

describe("equalize, ReLU6 mode 'clip'", () => {
  it('keeps the float outputs exactly, also where activations exceed 6 (Relu → per-channel Min)', async () => {
    const g = chain('relu6', 2);
    const big = input(7, 3);
    g.outputs.push(makeValueInfo('c1', ['N', 8, 6, 6]));
    const ref = await runGraph(g, big, ['output', 'c1']);
    expect(maxAbs(ref.c1.data)).toBeGreaterThan(6); // the clip at 6 is active on this input
    g.outputs.pop();
    const { graph, pairs, scales } = equalize(g, { relu6: 'clip' });
    expect(graph.nodes.find((n) => n.name === 'act1')!.opType).toBe('Relu');
    const min = graph.nodes.find((n) => n.opType === 'Min')!;
    expect(min.outputs).toEqual(['a1']); // the depthwise conv still reads a1
    expect(pairs[0].clipBound).toBe(min.inputs[1]);
    const bound = f32(graph, min.inputs[1]);
    for (let i = 0; i < 8; i++) expect(bound[i]).toBeCloseTo(6 / scales[0][i], 4);
    const out = await runGraph(graph, big);
    expect(maxAbsDiff(ref.output.data, out.output.data)).toBeLessThan(TOL * Math.max(1, maxAbs(ref.output.data)));
  });

  it('absorbs high biases through the Min by lowering its bound (exact when c ≤ every value)', async () => {
    const g = chain('relu6', 4, 1);
    const b1 = f32(g, 'b1');
    for (let i = 0; i < 8; i++) b1[i] = 3 + i; // conv1 (1×1) outputs sit well above 0, some above 6
    const { graph, pairs } = equalize(g, { relu6: 'clip' });
    const x = input(5, 0.05);
    const ref = await runGraph({ ...graph, outputs: [...graph.outputs, makeValueInfo('c1', ['N', 8, 6, 6])] }, x, [
      'output',
      'c1',
    ]);
    const mins = new Float64Array(8).fill(Infinity);
    for (let n = 0; n < 2; n++)
      for (let c = 0; c < 8; c++)
        for (let k = 0; k < 36; k++) mins[c] = Math.min(mins[c], ref.c1.data[(n * 8 + c) * 36 + k]);
    const dist = new Map([[pairs[0].preActivation, { mean: mins, std: new Float64Array(8) }]]);
    const before = Float64Array.from(f32(graph, pairs[0].clipBound!));
    const { graph: ab, absorbed } = absorbHighBias(graph, [pairs[0]], dist);
    const c = absorbed.get('conv1')!;
    expect(c.some((v) => v > 0.1)).toBe(true);
    const after = f32(ab, pairs[0].clipBound!);
    for (let i = 0; i < 8; i++) {
      expect(c[i]).toBeLessThanOrEqual(before[i] + 1e-6); // never past the clip
      expect(after[i]).toBeCloseTo(before[i] - c[i], 4);
    }
    // conv1's pair feeds the depthwise conv, whose zero padding sees c at the borders: compare the centre
    const out = await runGraph(ab, x);
    let worst = 0;
    for (let n = 0; n < 2; n++)
      for (let o = 0; o < 4; o++)
        for (let y = 2; y < 4; y++)
          for (let xx = 2; xx < 4; xx++) {
            const k = ((n * 4 + o) * 6 + y) * 6 + xx;
            worst = Math.max(worst, Math.abs(ref.output.data[k] - out.output.data[k]));
          }
    expect(worst).toBeLessThan(TOL * 10 * Math.max(1, maxAbs(ref.output.data)));
  });
});

describe('absorbHighBias', () => {
  it('is exact when c ≤ every pre-activation value (1×1 conv1, no padding involved in conv3)', async () => {
    // conv1 1×1 and dw with positive biases: their outputs sit above 0 on this input
    const g = chain('relu', 3, 1);
    const b1 = f32(g, 'b1');
    const b2 = f32(g, 'b2');
    for (let i = 0; i < 8; i++) {
      b1[i] = 2 + i;
      b2[i] = 40 + i; // dw's outputs stay positive: a high bias to absorb
    }
    const { graph, pairs } = equalize(g, { relu6: 'relu' });
    const x = input(5, 0.1);
    const withOutputs = (h: Graph) => ({
      ...h,
      outputs: [...h.outputs, makeValueInfo('a2', ['N', 8, 6, 6]), makeValueInfo('c2', ['N', 8, 6, 6])],
    });
    const ref = await runGraph(withOutputs(graph), x, ['output', 'a2', 'c2']);
    // dw → conv3 (1×1): take c_i = the minimum of dw's output channel i (pre-activation)
    const pre = ref.c2;
    const mins = new Float64Array(8).fill(Infinity);
    for (let n = 0; n < 2; n++)
      for (let c = 0; c < 8; c++)
        for (let k = 0; k < 36; k++) mins[c] = Math.min(mins[c], pre.data[(n * 8 + c) * 36 + k]);
    const dist = new Map([[pairs[1].preActivation, { mean: mins, std: new Float64Array(8) }]]);
    const { graph: ab, absorbed } = absorbHighBias(graph, [pairs[1]], dist);
    const c = absorbed.get('dw')!;
    expect(Array.from(c)).toEqual(Array.from(mins, (m) => Math.max(0, m)));
    expect(c.some((v) => v > 0.1)).toBe(true);
    const out = await runGraph(withOutputs(ab), x, ['output', 'a2']);
    expect(maxAbsDiff(ref.output.data, out.output.data)).toBeLessThan(TOL * 10 * Math.max(1, maxAbs(ref.output.data)));
    // the activation range shrank by c
    expect(maxAbs(out.a2.data)).toBeLessThan(maxAbs(ref.a2.data));
  });
});
