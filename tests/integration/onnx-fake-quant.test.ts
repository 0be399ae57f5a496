import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { QpError } from '../../src/lib/util/errors.ts';
import type { QParams } from '../../src/lib/quant/types.ts';
import { buildStatsGraph } from '../../src/lib/onnx/calibration.ts';
import { addOutputs, insertFakeQuant } from '../../src/lib/onnx/fake-quant.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { type Graph, makeGraph, makeNode, makeTensor, makeValueInfo } from '../../src/lib/onnx/ir.ts';
import { parseModel, serializeModel } from '../../src/lib/onnx/model.ts';
import { findQuantPoints } from '../../src/lib/onnx/placement.ts';
import {
  HAVE_MOBILENET,
  MOBILENET,
  NO_MOBILENET_MSG,
  firstDiff,
  mulberry32,
  randn,
  runGraph,
  smallCnn,
} from '../support/onnx-helpers.ts';

/** Local JS reference of the inserted node sequence (independent of src/lib/quant). */
function roundHalfToEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
function fqRef(
  x: Float32Array,
  scale: ArrayLike<number>,
  lo: ArrayLike<number>,
  hi: ArrayLike<number>,
  channelOf: (i: number) => number = () => 0,
): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = channelOf(i);
    const s = Math.fround(scale[c]);
    y[i] = Math.fround(Math.min(Math.max(roundHalfToEven(Math.fround(x[i] / s)), lo[c]), hi[c]) * s);
  }
  return y;
}

const qp = (scale: number[], zp: number[], qmin: number, qmax: number, axis = -1): QParams => ({
  scale: Float32Array.from(scale),
  zeroPoint: Int32Array.from(zp),
  qmin,
  qmax,
  axis,
});
const bounds = (q: QParams) => ({
  lo: [...q.zeroPoint].map((z) => q.qmin - z),
  hi: [...q.zeroPoint].map((z) => q.qmax - z),
});

/** Per-channel symmetric weight fake-quant on axis 0 with the same reference formula. */
function quantWeights(w: Float32Array, C: number, bits: number): Float32Array {
  const per = w.length / C;
  const qmax = 2 ** (bits - 1) - 1;
  const s = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    let m = 0;
    for (let j = 0; j < per; j++) m = Math.max(m, Math.abs(w[c * per + j]));
    s[c] = m / qmax;
  }
  return fqRef(w, s, new Array(C).fill(-qmax - 1), new Array(C).fill(qmax), (i) => Math.floor(i / per));
}

const N = 2;
function input(): Float32Array {
  const x = randn(mulberry32(77), N * 3 * 64, 1.5);
  // exact half ties at scale 0.25 (x/s = ±0.5, 1.5, 2.5, -2.5) and saturating values
  x.set([0.125, -0.125, 0.375, 0.625, -0.625, 100, -100, 31.625, -32.125]);
  return x;
}
const feeds = () => ({ input: { data: input(), dims: [N, 3, 8, 8] } });

describe('insertFakeQuant', () => {
  const g = foldBatchNorm(smallCnn({ seed: 5 })).graph;
  const weights = new Map([
    ['w1', quantWeights(g.initializers.get('w1')!.data as Float32Array, 4, 4)],
    ['w2', quantWeights(g.initializers.get('w2')!.data as Float32Array, 4, 3)],
  ]);
  const cases: [string, QParams, string][] = [
    ['input', qp([0.25], [0], -128, 127), 'per-tensor signed, half ties and saturation'],
    ['r1', qp([0.0371], [2], 0, 15), 'per-tensor unsigned 4-bit, zero point 2'],
    ['b2', qp([0.05, 0.1, 0.07, 0.2], [0, 1, -1, 3], -8, 7, 1), 'per-channel on axis 1, rank unknown'],
    ['flat', qp([0.013], [-5], -128, 127), 'classifier input'],
  ];

  it('returns a new graph and leaves the input untouched', () => {
    const before = serializeModel(g);
    const f = insertFakeQuant(g, { weights, activations: new Map([['r1', cases[1][1]]]) });
    expect(serializeModel(g)).toEqual(before);
    expect(f.initializers.get('w1')!.data).toBe(weights.get('w1'));
    expect(f.nodes.find((n) => n.name === 'dwconv')!.inputs[0]).toBe('r1_fq');
    expect(f.nodes.find((n) => n.name === 'add')!.inputs[0]).toBe('r1_fq');
    expect(f.nodes.filter((n) => n.name.startsWith('r1_fq/')).map((n) => n.opType)).toEqual([
      'Div',
      'Round',
      'Clip',
      'Mul',
    ]);
  });

  for (const [t, q, what] of cases) {
    it(`ORT equals the JS reference exactly: ${t} (${what})`, async () => {
      const base = addOutputs(insertFakeQuant(g, { weights, activations: new Map() }), [t]);
      const fq = addOutputs(insertFakeQuant(g, { weights, activations: new Map([[t, q]]) }), [t, `${t}_fq`]);
      const ref = await runGraph(base, feeds(), [t]);
      const got = await runGraph(fq, feeds(), [t, `${t}_fq`]);
      const x = ref[t].data;
      // the float tensor itself is unchanged by inserting the quantizer after it
      expect(firstDiff(got[t].data, x)).toBe(-1);
      const { lo, hi } = bounds(q);
      const dims = ref[t].dims;
      const inner = dims.slice(2).reduce((a, b) => a * b, 1);
      const expected = fqRef(x, q.scale, lo, hi, q.axis === 1 ? (i) => Math.floor(i / inner) % dims[1] : () => 0);
      expect(got[`${t}_fq`].dims).toEqual(dims);
      expect(firstDiff(got[`${t}_fq`].data, expected)).toBe(-1);
      // the quantizer does something (values actually moved and some saturated)
      expect(firstDiff(expected, x)).not.toBe(-1);
      if (t === 'input') {
        expect([...got.input_fq.data.slice(0, 9)]).toEqual([0, -0, 0.5, 0.5, -0.5, 31.75, -32, 31.5, -32]);
      }
    });
  }

  it('all points at once: every fake-quantized tensor equals the reference of its float input in the same run', async () => {
    const fq = insertFakeQuant(g, { weights, activations: new Map(cases.map(([t, q]) => [t, q])) });
    const names = cases.flatMap(([t]) => [t, `${t}_fq`]);
    const out = await runGraph(addOutputs(fq, names), feeds(), [...names, 'output']);
    for (const [t, q] of cases) {
      const { lo, hi } = bounds(q);
      const dims = out[t].dims;
      const inner = dims.slice(2).reduce((a, b) => a * b, 1);
      const expected = fqRef(
        out[t].data,
        q.scale,
        lo,
        hi,
        q.axis === 1 ? (i) => Math.floor(i / inner) % dims[1] : () => 0,
      );
      expect(firstDiff(out[`${t}_fq`].data, expected), t).toBe(-1);
    }
    expect(out.output.dims).toEqual([N, 5]);
  });

  it('divides by the scale (not multiplies by its reciprocal) and rounds ties to even, on values at tie points', async () => {
    // x = fround((k + 0.5)·s) makes x/s land within an ulp of a tie, where x/s and
    // x·fround(1/s) round differently for some k: a Mul-by-reciprocal graph fails this test.
    const s = 0.0371;
    const xs: number[] = [];
    for (let k = -127; k <= 127; k++) {
      const x = Math.fround((k + 0.5) * s);
      xs.push(x, Math.fround(x * (1 + 2 ** -23)), Math.fround(x * (1 - 2 ** -23)));
    }
    const x = Float32Array.from(xs);
    const q = qp([s], [0], -128, 127);
    const { lo, hi } = bounds(q);
    const expected = fqRef(x, q.scale, lo, hi);
    const recip = Math.fround(1 / Math.fround(s));
    const viaRecip = x.map((v) =>
      Math.fround(Math.min(Math.max(roundHalfToEven(Math.fround(v * recip)), -128), 127) * Math.fround(s)),
    );
    expect(firstDiff(viaRecip, expected)).not.toBe(-1); // the data can tell the two apart
    const h = makeGraph({
      inputs: [makeValueInfo('x', [x.length])],
      outputs: [makeValueInfo('y', null)],
      nodes: [makeNode('Relu', ['x'], ['y'], {}, { name: 'relu' })],
    });
    const fq = addOutputs(insertFakeQuant(h, { weights: new Map(), activations: new Map([['x', q]]) }), ['x_fq']);
    const out = await runGraph(fq, { x: { data: x, dims: [x.length] } }, ['x_fq']);
    expect(firstDiff(out.x_fq.data, expected)).toBe(-1);
  });

  it('keeps a quantized graph output float', async () => {
    const q = qp([0.5], [0], -8, 7);
    const fq = insertFakeQuant(g, { weights: new Map(), activations: new Map([['output', q]]) });
    expect(fq.outputs.map((o) => o.name)).toEqual(['output']);
    const a = await runGraph(g, feeds());
    const b = await runGraph(addOutputs(fq, ['output_fq']), feeds());
    expect(firstDiff(a.output.data, b.output.data)).toBe(-1);
    const { lo, hi } = bounds(q);
    expect(firstDiff(b.output_fq.data, fqRef(a.output.data, q.scale, lo, hi))).toBe(-1);
  });

  it('raises opset 9 to 11, rewriting Clip attributes as inputs', async () => {
    const old = parseModel(serializeModel(foldBatchNorm(smallCnn({ seed: 5, opset: 9, relu6Clip: true })).graph));
    expect(old.opset).toBe(9);
    const q = qp([0.0371], [2], 0, 15);
    const fq = insertFakeQuant(old, { weights: new Map(), activations: new Map([['r1', q]]) });
    expect(fq.opset).toBe(11);
    expect(old.opset).toBe(9);
    const clip = fq.nodes.find((n) => n.name === 'relu1')!;
    expect(clip.inputs.length).toBe(3);
    expect(clip.attrs).toEqual({});
    const ref = await runGraph(addOutputs(old, ['r1']), feeds(), ['r1', 'output']);
    const got = await runGraph(addOutputs(fq, ['r1', 'r1_fq']), feeds(), ['r1', 'r1_fq']);
    expect(firstDiff(got.r1.data, ref.r1.data)).toBe(-1);
    expect(Math.max(...ref.r1.data)).toBeLessThanOrEqual(6);
    const { lo, hi } = bounds(q);
    expect(firstDiff(got.r1_fq.data, fqRef(ref.r1.data, q.scale, lo, hi))).toBe(-1);
  });

  it('refuses to raise the opset of a model with ops that changed meaning', () => {
    const h: Graph = makeGraph({
      opset: 9,
      inputs: [makeValueInfo('x', [1, 1, 2, 2])],
      outputs: [makeValueInfo('y', null)],
      initializers: [makeTensor('sc', [4], [1, 1, 2, 2])],
      nodes: [makeNode('Upsample', ['x', 'sc'], ['y'], { mode: 'nearest' }, { name: 'up' })],
    });
    let err: unknown;
    try {
      insertFakeQuant(h, { weights: new Map(), activations: new Map([['x', qp([1], [0], 0, 255)]]) });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QpError);
    expect((err as QpError).code).toBe('MODEL_UNSUPPORTED');
    expect((err as QpError).message).toMatch(/Upsample.*opset_version=13/);
  });

  it('rejects bad inputs as INTERNAL errors', () => {
    const bad = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as QpError).code;
      }
      return 'none';
    };
    expect(
      bad(() => insertFakeQuant(g, { weights: new Map([['w1', new Float32Array(3)]]), activations: new Map() })),
    ).toBe('INTERNAL');
    expect(
      bad(() => insertFakeQuant(g, { weights: new Map(), activations: new Map([['nope', qp([1], [0], 0, 1)]]) })),
    ).toBe('INTERNAL');
    expect(
      bad(() => insertFakeQuant(g, { weights: new Map(), activations: new Map([['r1', qp([0], [0], 0, 1)]]) })),
    ).toBe('INTERNAL');
    expect(bad(() => addOutputs(g, ['nope']))).toBe('INTERNAL');
  });
});

describe.skipIf(!HAVE_MOBILENET)(`MobileNet-V2 end to end${HAVE_MOBILENET ? '' : ` (${NO_MOBILENET_MSG})`}`, () => {
  it('stats graph on the 53 points, then a fake-quant graph from min/max params, runs and stays close', async () => {
    const g = parseModel(new Uint8Array(readFileSync(MOBILENET)));
    const points = findQuantPoints(g, {
      conv: true,
      gemm: true,
      add: false,
      pool: false,
      concat: false,
      modelInput: false,
    });
    const tensors = points.activations.map((a) => a.tensor);
    const x = { input: { data: randn(mulberry32(3), 2 * 3 * 224 * 224), dims: [2, 3, 224, 224] } };
    const { graph: sg, outputs } = buildStatsGraph(g, tensors);
    const stats = await runGraph(sg, x);
    // logits + per tensor: min, max, dims, Σx, Σx²
    expect(Object.keys(stats).length).toBe(1 + 5 * 53);
    // 8-bit asymmetric per-tensor MinMax params from the in-graph stats
    const acts = new Map<string, QParams>();
    for (const t of tensors) {
      const o = outputs.get(t)!;
      const mn = Math.min(0, stats[o.min].data[0]);
      const mx = Math.max(0, stats[o.max].data[0]);
      const s = Math.max((mx - mn) / 255, 1e-8);
      acts.set(t, qp([s], [Math.round(-mn / s) - 128], -128, 127));
    }
    const weights = new Map<string, Float32Array>();
    for (const w of points.weights) {
      const W = g.initializers.get(w.initializer)!;
      if (w.axis === 0) weights.set(w.initializer, quantWeights(W.data as Float32Array, W.dims[0], 8));
    }
    const fq = insertFakeQuant(g, { weights, activations: acts });
    expect(fq.nodes.length).toBe(g.nodes.length + 4 * 53);
    const a = stats.output.data;
    const b = (await runGraph(fq, x, ['output'])).output.data;
    // 8-bit MinMax on MobileNet-V2 changes logits but keeps them correlated
    let dot = 0,
      na = 0,
      nb = 0;
    for (let i = 0; i < a.length; i++) {
      dot += a[i] * b[i];
      na += a[i] * a[i];
      nb += b[i] * b[i];
    }
    expect(dot / Math.sqrt(na * nb)).toBeGreaterThan(0.9);
    expect(firstDiff(a, b)).not.toBe(-1);
  });
});
