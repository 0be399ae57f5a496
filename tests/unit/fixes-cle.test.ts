import { describe, expect, it } from 'vitest';
import { absorbHighBias, equalize, findClePairs } from '../../src/lib/analysis/cle.ts';
import { makeGraph, makeNode, makeTensor, makeValueInfo, type Graph } from '../../src/lib/onnx/ir.ts';
import { maxAbs, maxAbsDiff, mulberry32, randn, runGraph } from './onnx-helpers.ts';

/**
 * conv1 3→8 (3×3) → act → depthwise 8 (3×3) → ReLU → conv3 8→4 (1×1) → output.
 * conv1's channel i is scaled by 10^((i − 4)/2), so ranges differ by ~3 decades (as in
 * MobileNet-V2's depthwise layers).
 */
function chain(act: 'relu' | 'relu6', seed = 1, k1 = 3): Graph {
  const rng = mulberry32(seed);
  const w1 = randn(rng, 8 * 3 * k1 * k1, 0.3);
  const per = 3 * k1 * k1;
  for (let i = 0; i < 8; i++) for (let j = 0; j < per; j++) w1[i * per + j] *= 10 ** ((i - 4) / 2);
  const pad1 = (k1 - 1) / 2;
  return makeGraph({
    opset: 13,
    inputs: [makeValueInfo('input', ['N', 3, 6, 6])],
    outputs: [makeValueInfo('output', ['N', 4, 6, 6])],
    initializers: [
      makeTensor('w1', [8, 3, k1, k1], w1),
      makeTensor('b1', [8], randn(rng, 8, 0.5, 0.5)),
      makeTensor('w2', [8, 1, 3, 3], randn(rng, 72, 0.5)),
      makeTensor('b2', [8], randn(rng, 8, 0.2)),
      makeTensor('w3', [4, 8, 1, 1], randn(rng, 32, 0.5)),
      makeTensor('b3', [4], randn(rng, 4, 0.1)),
      makeTensor('zero', [], [0]),
      makeTensor('six', [], [6]),
    ],
    nodes: [
      makeNode(
        'Conv',
        ['input', 'w1', 'b1'],
        ['c1'],
        { kernel_shape: [k1, k1], pads: [pad1, pad1, pad1, pad1] },
        { name: 'conv1' },
      ),
      act === 'relu'
        ? makeNode('Relu', ['c1'], ['a1'], {}, { name: 'act1' })
        : makeNode('Clip', ['c1', 'zero', 'six'], ['a1'], {}, { name: 'act1' }),
      makeNode(
        'Conv',
        ['a1', 'w2', 'b2'],
        ['c2'],
        { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 8 },
        { name: 'dw' },
      ),
      makeNode('Relu', ['c2'], ['a2'], {}, { name: 'act2' }),
      makeNode('Conv', ['a2', 'w3', 'b3'], ['output'], { kernel_shape: [1, 1] }, { name: 'conv3' }),
    ],
  });
}

function input(seed = 7, scale = 1) {
  const rng = mulberry32(seed);
  return { input: { data: randn(rng, 2 * 3 * 36, scale), dims: [2, 3, 6, 6] } };
}

function f32(g: Graph, name: string): Float32Array {
  return g.initializers.get(name)!.data as Float32Array;
}

/** max |W[i, …]| per output channel / max |W[:, i, …]| per input channel. */
function outRange(w: Float32Array, c: number): number[] {
  const per = w.length / c;
  return Array.from({ length: c }, (_, i) => maxAbs(w.subarray(i * per, (i + 1) * per)));
}
function inRange(w: Float32Array, dims: number[]): number[] {
  const [o, c] = dims;
  const sp = w.length / (o * c);
  return Array.from({ length: c }, (_, i) => {
    let m = 0;
    for (let j = 0; j < o; j++) m = Math.max(m, maxAbs(w.subarray((j * c + i) * sp, (j * c + i + 1) * sp)));
    return m;
  });
}

// Float error: rescaling reorders nothing but rounds each weight once more to float32,
// so outputs move by a few ulps of the output scale; 1e-5 relative is ~100 ulps.
const TOL = 1e-5;

describe('findClePairs', () => {
  it('finds conv→ReLU→depthwise and depthwise→ReLU→1×1 and marks ReLU6', () => {
    const pairs = findClePairs(chain('relu6'));
    expect(pairs.map((p) => [p.first, p.second, p.relu6, p.depthwiseSecond, p.channels])).toEqual([
      ['conv1', 'dw', true, true, 8],
      ['dw', 'conv3', false, false, 8],
    ]);
  });

  it('skips a chain whose intermediate tensor has a second reader', () => {
    const g = chain('relu');
    g.outputs.push(makeValueInfo('a1', ['N', 8, 6, 6]));
    expect(findClePairs(g).map((p) => p.first)).toEqual(['dw']);
  });
});

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

  it('makes the ranges of each pair equal to sqrt(r1·r2) (one pair, one sweep)', () => {
    const g = chain('relu');
    // only the first pair: cut the second by giving act2's output another reader
    g.outputs.push(makeValueInfo('a2', ['N', 8, 6, 6]));
    const r1 = outRange(f32(g, 'w1'), 8);
    const r2 = outRange(f32(g, 'w2'), 8);
    const { graph, pairs, scales } = equalize(g, { relu6: 'relu', maxSweeps: 1 });
    expect(pairs.length).toBe(1);
    const n1 = outRange(f32(graph, 'w1'), 8);
    const n2 = outRange(f32(graph, 'w2'), 8);
    for (let i = 0; i < 8; i++) {
      const want = Math.sqrt(r1[i] * r2[i]);
      expect(n1[i]).toBeCloseTo(want, 5);
      expect(n2[i]).toBeCloseTo(want, 5);
      expect(scales[0][i]).toBeCloseTo(Math.sqrt(r1[i] / r2[i]), 6);
    }
    // before: ranges spread over ~3 decades; after: conv1's spread is the geometric mean's
    expect(Math.max(...r1) / Math.min(...r1)).toBeGreaterThan(1000);
    expect(Math.max(...n1) / Math.min(...n1)).toBeLessThan(
      (Math.sqrt(Math.max(...r1) / Math.min(...r1)) * Math.max(...r2)) / Math.min(...r2),
    );
  });

  it('converges on both pairs: every shared channel ends with equal ranges on both sides', () => {
    const { graph } = equalize(chain('relu'), { relu6: 'relu' });
    const dims3 = graph.initializers.get('w3')!.dims;
    const [a, b] = [outRange(f32(graph, 'w1'), 8), outRange(f32(graph, 'w2'), 8)];
    const [c, d] = [outRange(f32(graph, 'w2'), 8), inRange(f32(graph, 'w3'), dims3)];
    for (let i = 0; i < 8; i++) {
      expect(a[i] / b[i]).toBeCloseTo(1, 4);
      expect(c[i] / d[i]).toBeCloseTo(1, 4);
    }
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

  it('uses c = max(0, mean − 3·std) and skips pairs still ending in ReLU6', () => {
    const g = chain('relu6');
    const { graph, pairs } = equalize(g, { relu6: 'keep' });
    const mean = new Float64Array(8).fill(4);
    const std = new Float64Array(8).fill(1);
    const dist = new Map(pairs.map((p) => [p.preActivation, { mean, std }]));
    const { absorbed } = absorbHighBias(graph, pairs, dist);
    expect([...absorbed.keys()]).toEqual(['dw']); // conv1→dw still has Clip(0, 6)
    expect(Array.from(absorbed.get('dw')!)).toEqual(new Array(8).fill(1));
    expect(() => absorbHighBias(graph, pairs, new Map())).toThrow(/mean and deviation/);
  });
});
