import { describe, expect, it } from 'vitest';
import { chain, f32 } from '../support/cle-chain.ts';
import { absorbHighBias, equalize, findClePairs } from '../../src/lib/corrections/cle.ts';
import { makeValueInfo } from '../../src/lib/onnx/ir.ts';
import { maxAbs } from '../support/onnx-helpers.ts';

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
});

describe('absorbHighBias', () => {
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
