import { describe, expect, it } from 'vitest';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { makeGraph, makeNode, makeTensor, makeValueInfo } from '../../src/lib/onnx/ir.ts';
import { maxAbs, maxAbsDiff, mulberry32, randn, runGraph, smallCnn, uniform } from '../support/onnx-helpers.ts';

// Tolerance: folding reorders float32 arithmetic (W·k instead of BN after conv), so outputs
// move by a few float32 ulps of the output scale. 1e-4 × max(1, max|y|) is ~1000 ulps.
const TOL = 1e-4;

describe('foldBatchNorm', () => {
  it('folds Conv+BN (with bias, and depthwise without bias) and leaves BN not after a Conv', async () => {
    const g = smallCnn({ seed: 3 });
    const w1Before = (g.initializers.get('w1')!.data as Float32Array).slice();
    const { graph: f, folded, remaining } = foldBatchNorm(g);
    expect(folded).toBe(2);
    expect(remaining).toBe(1);
    expect(f.nodes.map((n) => n.opType)).toEqual([
      'Conv',
      'Relu',
      'Conv',
      'Add',
      'BatchNormalization',
      'GlobalAveragePool',
      'Flatten',
      'Gemm',
    ]);
    const conv1 = f.nodes.find((n) => n.name === 'conv1')!;
    const dw = f.nodes.find((n) => n.name === 'dwconv')!;
    expect(conv1.outputs).toEqual(['c1bn']);
    expect(dw.outputs).toEqual(['b2']);
    expect(dw.inputs.length).toBe(3); // a bias was added
    expect(f.initializers.get(dw.inputs[2])!.dims).toEqual([4]);
    // BN1/BN2 parameters are gone, BN3's stay
    expect(f.initializers.has('bn1_gamma')).toBe(false);
    expect(f.initializers.has('bn3_gamma')).toBe(true);
    // input graph untouched
    expect(g.nodes.length).toBe(10);
    expect(maxAbsDiff(g.initializers.get('w1')!.data as Float32Array, w1Before)).toBe(0);

    // folded weights match the formula (float64 compute, float32 store)
    const W = g.initializers.get('w1')!.data as Float32Array;
    const b = g.initializers.get('b1')!.data as Float32Array;
    const [gm, bt, mu, vr] = ['gamma', 'beta', 'mean', 'var'].map(
      (s) => g.initializers.get(`bn1_${s}`)!.data as Float32Array,
    );
    const eps = Math.fround(1e-5);
    const Wf = f.initializers.get(conv1.inputs[1])!.data as Float32Array;
    const bf = f.initializers.get(conv1.inputs[2])!.data as Float32Array;
    for (let c = 0; c < 4; c++) {
      const k = gm[c] / Math.sqrt(vr[c] + eps);
      for (let j = 0; j < 27; j++) expect(Wf[c * 27 + j]).toBe(Math.fround(W[c * 27 + j] * k));
      expect(bf[c]).toBe(Math.fround((b[c] - mu[c]) * k + bt[c]));
    }

    const x = randn(mulberry32(9), 4 * 3 * 64);
    const feeds = { input: { data: x, dims: [4, 3, 8, 8] } };
    const fetch = ['output'];
    const ref = await runGraph(g, feeds, fetch);
    const got = await runGraph(f, feeds, fetch);
    const scale = Math.max(1, maxAbs(ref.output.data));
    const d = maxAbsDiff(ref.output.data, got.output.data);
    expect(d).toBeLessThanOrEqual(TOL * scale);
  });

  it('does not fold when the Conv output has another consumer, and copies a shared weight', async () => {
    const rng = mulberry32(11);
    const bnInits = (p: string) => [
      makeTensor(`${p}_g`, [2], uniform(rng, 2, 0.5, 1.5)),
      makeTensor(`${p}_b`, [2], randn(rng, 2, 0.3)),
      makeTensor(`${p}_m`, [2], randn(rng, 2, 0.3)),
      makeTensor(`${p}_v`, [2], uniform(rng, 2, 0.5, 1.5)),
    ];
    const bn = (p: string, x: string, y: string) =>
      makeNode('BatchNormalization', [x, `${p}_g`, `${p}_b`, `${p}_m`, `${p}_v`], [y], {}, { name: p });
    const g = makeGraph({
      inputs: [makeValueInfo('x', [1, 2, 4, 4])],
      outputs: [makeValueInfo('y', null)],
      initializers: [makeTensor('w', [2, 2, 1, 1], randn(rng, 4)), ...bnInits('bnA'), ...bnInits('bnB')],
      nodes: [
        makeNode('Conv', ['x', 'w'], ['a'], {}, { name: 'convA' }), // shared weight w
        bn('bnA', 'a', 'a2'),
        makeNode('Conv', ['a2', 'w'], ['c'], {}, { name: 'convB' }),
        bn('bnB', 'c', 'c2'), // c is also read by the Add below: not foldable
        makeNode('Add', ['c', 'c2'], ['y'], {}, { name: 'add' }),
      ],
    });
    const { graph: f, folded, remaining } = foldBatchNorm(g);
    expect(folded).toBe(1);
    expect(remaining).toBe(1);
    const convA = f.nodes.find((n) => n.name === 'convA')!;
    const convB = f.nodes.find((n) => n.name === 'convB')!;
    expect(convA.inputs[1]).not.toBe('w'); // shared weight got a new initializer
    expect(convB.inputs[1]).toBe('w');
    expect(
      maxAbsDiff(f.initializers.get('w')!.data as Float32Array, g.initializers.get('w')!.data as Float32Array),
    ).toBe(0);
    const x = randn(rng, 32);
    const feeds = { x: { data: x, dims: [1, 2, 4, 4] } };
    const ref = await runGraph(g, feeds);
    const got = await runGraph(f, feeds);
    expect(maxAbsDiff(ref.y.data, got.y.data)).toBeLessThanOrEqual(TOL * Math.max(1, maxAbs(ref.y.data)));
  });

  it('folds Gemm+BN (transB=0 and transB=1)', async () => {
    for (const transB of [0, 1]) {
      const rng = mulberry32(20 + transB);
      const g = makeGraph({
        inputs: [makeValueInfo('x', [3, 4])],
        outputs: [makeValueInfo('y', null)],
        initializers: [
          makeTensor('B', transB ? [5, 4] : [4, 5], randn(rng, 20)),
          makeTensor('C', [5], randn(rng, 5)),
          makeTensor('g', [5], uniform(rng, 5, 0.5, 1.5)),
          makeTensor('b', [5], randn(rng, 5)),
          makeTensor('m', [5], randn(rng, 5)),
          makeTensor('v', [5], uniform(rng, 5, 0.5, 1.5)),
        ],
        nodes: [
          makeNode('Gemm', ['x', 'B', 'C'], ['h'], { transB, alpha: 0.5, beta: 2 }, { name: 'fc' }),
          makeNode('BatchNormalization', ['h', 'g', 'b', 'm', 'v'], ['y'], { epsilon: 1e-3 }, { name: 'bn' }),
        ],
      });
      const { graph: f, folded } = foldBatchNorm(g);
      expect(folded).toBe(1);
      expect(f.nodes.map((n) => n.opType)).toEqual(['Gemm']);
      const feeds = { x: { data: randn(rng, 12), dims: [3, 4] } };
      const ref = await runGraph(g, feeds);
      const got = await runGraph(f, feeds);
      expect(maxAbsDiff(ref.y.data, got.y.data)).toBeLessThanOrEqual(TOL * Math.max(1, maxAbs(ref.y.data)));
    }
  });
});
