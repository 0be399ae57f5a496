/**
 * BatchNormalization folding (src/lib/onnx/fold-bn.ts) as a property: for Conv (plain,
 * strided, grouped, depthwise, with and without bias) and Gemm (transB, alpha, beta, C
 * absent, scalar or per column) followed by a BN with random statistics, the folded graph
 * computes what the original computes (evaluated in TypeScript, tests/support/reference-eval.ts),
 * the BN is gone, and the input graph is untouched. Graphs where folding would change the
 * result keep their BN. The engine-side check of the same folds is tests/integration/onnx-fold-bn.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import {
  cloneGraph,
  makeGraph,
  makeNode,
  makeTensor,
  makeValueInfo,
  type Graph,
  type Node,
} from '../../src/lib/onnx/ir.ts';
import { evalGraph, type RefTensor } from '../support/reference-eval.ts';
import { mulberry32, randn, uniform } from '../support/onnx-helpers.ts';

const TOL = 1e-4;

function close(a: RefTensor, b: RefTensor): void {
  expect(b.dims).toEqual(a.dims);
  const scale = Math.max(1, ...Array.from(a.data, Math.abs));
  for (let i = 0; i < a.data.length; i++) expect(Math.abs(a.data[i] - b.data[i])).toBeLessThanOrEqual(TOL * scale);
}

function bnInits(rng: () => number, p: string, c: number) {
  return [
    makeTensor(`${p}_g`, [c], uniform(rng, c, -1.5, 1.5)),
    makeTensor(`${p}_b`, [c], randn(rng, c, 0.5)),
    makeTensor(`${p}_m`, [c], randn(rng, c, 0.5)),
    makeTensor(`${p}_v`, [c], uniform(rng, c, 0.01, 3)),
  ];
}
const bnNode = (p: string, x: string, y: string, attrs: Node['attrs'] = {}) =>
  makeNode('BatchNormalization', [x, `${p}_g`, `${p}_b`, `${p}_m`, `${p}_v`], [y], attrs, { name: p });

const input = (rng: () => number, dims: number[]): RefTensor => ({
  dims,
  data: Float64Array.from(
    randn(
      rng,
      dims.reduce((a, b) => a * b, 1),
    ),
  ),
});

describe('reference evaluator (the oracle of these tests)', () => {
  it('computes a padded, strided Conv and a BN worked out by hand', () => {
    // x = [[1,2],[3,4]] (1×1×2×2), w = [[1,0],[0,-1]], pads 1, stride 2 → 2×2 output
    const g = makeGraph({
      inputs: [makeValueInfo('x', [1, 1, 2, 2])],
      outputs: [makeValueInfo('y', null)],
      initializers: [
        makeTensor('w', [1, 1, 2, 2], [1, 0, 0, -1]),
        makeTensor('b', [1], [0.5]),
        ...[
          ['s', 2],
          ['o', 1],
          ['m', 0.5],
          ['v', 3],
        ].map(([n, v]) => makeTensor(n as string, [1], [v as number])),
      ],
      nodes: [
        makeNode('Conv', ['x', 'w', 'b'], ['c'], { pads: [1, 1, 1, 1], strides: [2, 2], kernel_shape: [2, 2] }),
        makeNode('BatchNormalization', ['c', 's', 'o', 'm', 'v'], ['y'], { epsilon: 1 }),
      ],
    });
    const c = evalGraph(g, { x: { dims: [1, 1, 2, 2], data: Float64Array.of(1, 2, 3, 4) } }, ['c', 'y']);
    // zero-padded to 4×4, 2×2 windows at rows/cols 0 and 2: x·w = top-left − bottom-right
    // [0 − 1, 0 − 0, 0 − 0, 4 − 0] + bias 0.5
    expect(Array.from(c.c.data)).toEqual([-0.5, 0.5, 0.5, 4.5]);
    expect(c.c.dims).toEqual([1, 1, 2, 2]);
    // (c − 0.5)/√(3 + 1)·2 + 1 = c + 0.5
    expect(Array.from(c.y.data)).toEqual([0, 1, 1, 5]);
  });
});

describe('foldBatchNorm keeps a float graph’s outputs (property)', () => {
  const convCase = fc.record({
    seed: fc.nat(),
    cin: fc.integer({ min: 1, max: 3 }),
    cout: fc.integer({ min: 1, max: 4 }),
    k: fc.integer({ min: 1, max: 3 }),
    stride: fc.integer({ min: 1, max: 2 }),
    pad: fc.integer({ min: 0, max: 1 }),
    depthwise: fc.boolean(),
    bias: fc.boolean(),
    relu: fc.boolean(),
    eps: fc.constantFrom(1e-5, 1e-3, 0.1),
  });

  it('Conv → BN (→ Relu): same outputs, BN folded, the input graph untouched', () => {
    fc.assert(
      fc.property(convCase, (p) => {
        const rng = mulberry32(p.seed);
        const cout = p.depthwise ? p.cin : p.cout;
        const group = p.depthwise ? p.cin : 1;
        const cg = p.cin / group;
        const g = makeGraph({
          inputs: [makeValueInfo('x', [2, p.cin, 5, 5])],
          outputs: [makeValueInfo('y', null)],
          initializers: [
            makeTensor('w', [cout, cg, p.k, p.k], randn(rng, cout * cg * p.k * p.k)),
            ...(p.bias ? [makeTensor('cb', [cout], randn(rng, cout))] : []),
            ...bnInits(rng, 'bn', cout),
          ],
          nodes: [
            makeNode('Conv', p.bias ? ['x', 'w', 'cb'] : ['x', 'w'], ['c'], {
              kernel_shape: [p.k, p.k],
              strides: [p.stride, p.stride],
              pads: [p.pad, p.pad, p.pad, p.pad],
              group,
            }),
            bnNode('bn', 'c', p.relu ? 'n' : 'y', { epsilon: p.eps }),
            ...(p.relu ? [makeNode('Relu', ['n'], ['y'])] : []),
          ],
        });
        const before = cloneGraph(g);
        const { graph: f, folded, remaining } = foldBatchNorm(g);
        expect([folded, remaining]).toEqual([1, 0]);
        expect(f.nodes.map((n) => n.opType)).toEqual(p.relu ? ['Conv', 'Relu'] : ['Conv']);
        // only the folded weight and bias are left
        expect([...f.initializers.keys()].sort()).toEqual(p.bias ? ['cb', 'w'] : ['Conv_c_bias_bnfold', 'w'].sort());
        expect(g).toEqual(before);
        const x = input(rng, [2, p.cin, 5, 5]);
        close(evalGraph(g, { x }).y, evalGraph(f, { x }).y);
      }),
      { numRuns: 60 },
    );
  });

  const gemmCase = fc.record({
    seed: fc.nat(),
    k: fc.integer({ min: 1, max: 4 }),
    n: fc.integer({ min: 1, max: 5 }),
    transB: fc.boolean(),
    alpha: fc.constantFrom(1, 0.5, -2),
    beta: fc.constantFrom(undefined, 1, 2, -0.5),
    c: fc.constantFrom('none', 'scalar', 'column', 'row'),
  });

  it('Gemm → BN: same outputs for any transB, alpha, beta and C (absent, scalar, per column)', () => {
    fc.assert(
      fc.property(gemmCase, (p) => {
        const rng = mulberry32(p.seed);
        const cInit =
          p.c === 'none'
            ? []
            : [
                makeTensor(
                  'C',
                  p.c === 'scalar' ? [1] : p.c === 'row' ? [1, p.n] : [p.n],
                  randn(rng, p.c === 'scalar' ? 1 : p.n),
                ),
              ];
        const g = makeGraph({
          inputs: [makeValueInfo('x', [3, p.k])],
          outputs: [makeValueInfo('y', null)],
          initializers: [
            makeTensor('B', p.transB ? [p.n, p.k] : [p.k, p.n], randn(rng, p.k * p.n)),
            ...cInit,
            ...bnInits(rng, 'bn', p.n),
          ],
          nodes: [
            makeNode('Gemm', p.c === 'none' ? ['x', 'B'] : ['x', 'B', 'C'], ['h'], {
              transB: p.transB ? 1 : 0,
              alpha: p.alpha,
              ...(p.beta === undefined ? {} : { beta: p.beta }),
            }),
            bnNode('bn', 'h', 'y'),
          ],
        });
        const before = cloneGraph(g);
        const { graph: f, folded } = foldBatchNorm(g);
        expect(folded).toBe(1);
        expect(f.nodes.map((n) => n.opType)).toEqual(['Gemm']);
        expect(f.nodes[0].attrs.beta).toBe(1);
        expect(g).toEqual(before);
        const x = input(rng, [3, p.k]);
        close(evalGraph(g, { x }).y, evalGraph(f, { x }).y);
      }),
      { numRuns: 60 },
    );
  });
});

describe('foldBatchNorm leaves what it must not fold', () => {
  const rng = mulberry32(3);
  const conv = (out = 'c') => makeNode('Conv', ['x', 'w'], [out], { kernel_shape: [1, 1] }, { name: 'conv' });
  const base = (nodes: Node[], outputs = ['y'], extra: ReturnType<typeof makeTensor>[] = []) =>
    makeGraph({
      inputs: [makeValueInfo('x', [1, 2, 3, 3])],
      outputs: outputs.map((o) => makeValueInfo(o, null)),
      initializers: [makeTensor('w', [2, 2, 1, 1], randn(rng, 4)), ...bnInits(rng, 'bn', 2), ...extra],
      nodes,
    });

  const cases: [string, Graph][] = [
    ['a BN after a Relu', base([conv(), makeNode('Relu', ['c'], ['r']), bnNode('bn', 'r', 'y')])],
    ['a Conv output read twice', base([conv(), bnNode('bn', 'c', 'n'), makeNode('Add', ['c', 'n'], ['y'])])],
    ['a Conv output that is a graph output', base([conv(), bnNode('bn', 'c', 'y')], ['y', 'c'])],
    ['training mode', base([conv(), bnNode('bn', 'c', 'y', { training_mode: 1 })])],
    ['the non-spatial BN', base([conv(), bnNode('bn', 'c', 'y', { spatial: 0 })])],
    [
      'a BN whose running statistics are outputs',
      base([conv(), makeNode('BatchNormalization', ['c', 'bn_g', 'bn_b', 'bn_m', 'bn_v'], ['y', 'rm'], {})]),
    ],
    [
      'a BN whose scale is computed, not an initializer',
      base([
        conv(),
        makeNode('Identity', ['bn_g'], ['g2']),
        makeNode('BatchNormalization', ['c', 'g2', 'bn_b', 'bn_m', 'bn_v'], ['y'], {}),
      ]),
    ],
    [
      'a Conv of another domain',
      base([makeNode('Conv', ['x', 'w'], ['c'], {}, { domain: 'com.example' }), bnNode('bn', 'c', 'y')]),
    ],
    [
      'a BN of another domain',
      base([
        conv(),
        makeNode('BatchNormalization', ['c', 'bn_g', 'bn_b', 'bn_m', 'bn_v'], ['y'], {}, { domain: 'com.example' }),
      ]),
    ],
  ];

  for (const [what, g] of cases) {
    it(`${what}: the BN stays, nothing else changes`, () => {
      const before = cloneGraph(g);
      const { graph: f, folded, remaining } = foldBatchNorm(g);
      expect(folded).toBe(0);
      expect(remaining).toBe(what.includes('BN of another domain') ? 0 : 1);
      expect(f.nodes).toEqual(before.nodes);
      expect([...f.initializers.keys()].sort()).toEqual([...before.initializers.keys()].sort());
      expect(g).toEqual(before);
    });
  }

  it('a Conv whose weight count does not match the BN channels, or whose bias is computed, stays', () => {
    const g = makeGraph({
      inputs: [makeValueInfo('x', [1, 2, 3, 3])],
      outputs: [makeValueInfo('y', null)],
      initializers: [makeTensor('w', [2, 2, 1, 1], randn(rng, 4)), ...bnInits(rng, 'bn', 3)],
      nodes: [conv(), bnNode('bn', 'c', 'y')],
    });
    expect(foldBatchNorm(g).folded).toBe(0);
    const h = makeGraph({
      inputs: [makeValueInfo('x', [1, 2, 3, 3]), makeValueInfo('b', [2])],
      outputs: [makeValueInfo('y', null)],
      initializers: [makeTensor('w', [2, 2, 1, 1], randn(rng, 4)), ...bnInits(rng, 'bn', 2)],
      nodes: [makeNode('Conv', ['x', 'w', 'b'], ['c']), bnNode('bn', 'c', 'y')],
    });
    expect(foldBatchNorm(h).folded).toBe(0);
  });

  it('a Gemm whose C has several rows, or whose weight is computed, stays', () => {
    const gemm = (cDims: number[]) =>
      makeGraph({
        inputs: [makeValueInfo('x', [2, 2])],
        outputs: [makeValueInfo('y', null)],
        initializers: [
          makeTensor('B', [2, 2], randn(rng, 4)),
          makeTensor(
            'C',
            cDims,
            randn(
              rng,
              cDims.reduce((a, b) => a * b, 1),
            ),
          ),
          ...bnInits(rng, 'bn', 2),
        ],
        nodes: [makeNode('Gemm', ['x', 'B', 'C'], ['h']), bnNode('bn', 'h', 'y')],
      });
    expect(foldBatchNorm(gemm([2, 2])).folded).toBe(0);
    expect(foldBatchNorm(gemm([3])).folded).toBe(0);
    expect(foldBatchNorm(gemm([1, 2])).folded).toBe(1);
    const computed = makeGraph({
      inputs: [makeValueInfo('x', [2, 2]), makeValueInfo('B', [2, 2])],
      outputs: [makeValueInfo('y', null)],
      initializers: bnInits(rng, 'bn', 2),
      nodes: [makeNode('Gemm', ['x', 'B'], ['h']), bnNode('bn', 'h', 'y')],
    });
    expect(foldBatchNorm(computed).folded).toBe(0);
  });

  it('a weight shared by two Convs is copied under a new name for the folded one', () => {
    const g = makeGraph({
      inputs: [makeValueInfo('x', [1, 2, 3, 3])],
      outputs: [makeValueInfo('y', null)],
      initializers: [makeTensor('w', [2, 2, 1, 1], randn(rng, 4)), ...bnInits(rng, 'bn', 2)],
      nodes: [
        makeNode('Conv', ['x', 'w'], ['a'], {}, { name: 'convA' }),
        bnNode('bn', 'a', 'a2'),
        makeNode('Conv', ['a2', 'w'], ['y'], {}, { name: 'convB' }),
      ],
    });
    const { graph: f } = foldBatchNorm(g);
    const a = f.nodes.find((n) => n.name === 'convA')!;
    expect(a.inputs[1]).toBe('w_bnfold');
    expect(a.inputs[2]).toBe('convA_bias_bnfold');
    expect(f.nodes.find((n) => n.name === 'convB')!.inputs[1]).toBe('w');
    expect(f.initializers.get('w')!.data).toEqual(g.initializers.get('w')!.data);
    const x = input(rng, [1, 2, 3, 3]);
    close(evalGraph(g, { x }).y, evalGraph(f, { x }).y);
  });
});
