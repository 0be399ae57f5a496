import { describe, expect, it } from 'vitest';
import {
  addStridedSamples,
  buildChannelStatsGraph,
  buildStatsGraph,
  samplePhase,
} from '../../src/lib/onnx/calibration.ts';
import { addOutputs } from '../../src/lib/onnx/fake-quant.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { mulberry32, randn, runGraph, smallCnn } from '../support/onnx-helpers.ts';

const N = 3;
const feeds = () => ({ input: { data: randn(mulberry32(123), N * 3 * 64, 2, 0.3), dims: [N, 3, 8, 8] } });
const TENSORS = ['input', 'r1', 'sum', 'flat'];

describe('buildStatsGraph', () => {
  for (const opset of [13, 18])
    it(`in-graph min/max equal JS exactly; sum and sum of squares within float32 accumulation error (opset ${opset})`, async () => {
      const g = foldBatchNorm(smallCnn({ seed: 8, opset })).graph;
      const { graph, outputs } = buildStatsGraph(addOutputs(g, TENSORS), TENSORS);
      expect(g.outputs.length).toBe(1); // input graph untouched
      expect([...outputs.keys()]).toEqual(TENSORS);
      const fetch = [...TENSORS, ...[...outputs.values()].flatMap((o) => [o.min, o.max, o.sum!, o.sumSq!, o.dims!])];
      const out = await runGraph(graph, feeds(), fetch);
      for (const t of TENSORS) {
        const x = out[t].data;
        let mn = Infinity,
          mx = -Infinity,
          s = 0,
          sAbs = 0,
          sq = 0;
        for (const v of x) {
          mn = Math.min(mn, v);
          mx = Math.max(mx, v);
          s += v;
          sAbs += Math.abs(v);
          sq += v * v;
        }
        const o = outputs.get(t)!;
        expect(out[o.min].dims).toEqual([]);
        expect(out[o.min].data[0], `${t} min`).toBe(mn);
        expect(out[o.max].data[0], `${t} max`).toBe(mx);
        // float32 sums of ≤ 600 terms: relative error well under 1e-5 of Σ|x|
        expect(Math.abs(out[o.sum!].data[0] - s), `${t} sum`).toBeLessThanOrEqual(1e-5 * sAbs + 1e-6);
        expect(Math.abs(out[o.sumSq!].data[0] - sq), `${t} sumSq`).toBeLessThanOrEqual(1e-5 * sq + 1e-6);
        expect([...out[o.dims!].data], `${t} dims`).toEqual(out[t].dims);
      }
    });

  it('leaves out the moment reductions unless asked', () => {
    const g = foldBatchNorm(smallCnn({ seed: 8 })).graph;
    const { graph, outputs } = buildStatsGraph(g, TENSORS, { moments: false });
    expect(graph.nodes.some((n) => n.opType === 'ReduceSum' || n.opType === 'ReduceSumSquare')).toBe(false);
    expect([...outputs.values()].every((o) => o.sum === undefined && o.sumSq === undefined)).toBe(true);
  });

  it('with shapes: false, adds only reductions (no Shape, whose int64 helpers WebGPU runs on the CPU)', () => {
    const g = foldBatchNorm(smallCnn({ seed: 8 })).graph;
    const { graph, outputs } = buildStatsGraph(g, TENSORS, { moments: true, shapes: false });
    expect([...outputs.values()].every((o) => o.dims === undefined)).toBe(true);
    const added = graph.nodes.slice(g.nodes.length).map((n) => n.opType);
    expect(new Set(added)).toEqual(new Set(['Flatten', 'ReduceMin', 'ReduceMax', 'ReduceSum', 'ReduceSumSquare']));
    // min and max per image first, then over the batch; axes as the opset wants them (13: attribute)
    const rowMin = graph.nodes.filter((n) => n.opType === 'ReduceMin' && 'axes' in n.attrs);
    expect(rowMin.map((n) => n.attrs.axes)).toEqual(TENSORS.map(() => [1]));
  });
});

describe('addStridedSamples', () => {
  it('hands over exactly every stride-th element of each tensor, from the start the phase sets', async () => {
    const g = foldBatchNorm(smallCnn({ seed: 8 })).graph;
    const { graph, phase, outputs } = addStridedSamples(addOutputs(g, TENSORS), TENSORS, 3);
    expect(g.inputs.length).toBe(1); // input graph untouched
    for (const offset of [0, 1, 2]) {
      const out = await runGraph(graph, { ...feeds(), [phase]: samplePhase(offset) }, [
        ...TENSORS,
        ...TENSORS.map((t) => outputs.get(t)!),
      ]);
      for (const t of TENSORS) {
        const whole = out[t].data;
        const want = whole.filter((_, i) => i >= offset && (i - offset) % 3 === 0);
        const got = out[outputs.get(t)!];
        expect(got.dims, `${t} from ${offset}`).toEqual([want.length]);
        expect([...got.data], `${t} from ${offset}`).toEqual([...want]);
      }
    }
  });

  it('refuses an opset without Slice steps and a stride that is not a positive integer', () => {
    expect(() => addStridedSamples(smallCnn({ opset: 9, relu6Clip: true }), ['r1'], 3)).toThrow(
      'Strided samples need opset 10 or newer, the graph has 9.',
    );
    expect(() => addStridedSamples(smallCnn(), ['r1'], 0)).toThrow(
      'A sampling stride must be a positive integer, got 0.',
    );
    expect(() => addStridedSamples(smallCnn(), ['nope'], 3)).toThrow(/Cannot collect statistics of "nope"/);
  });
});

describe('buildChannelStatsGraph', () => {
  for (const opset of [13, 18]) {
    it(`per-channel mean of x and x² match JS (opset ${opset}: axes as ${opset >= 18 ? 'input' : 'attribute'})`, async () => {
      const g = foldBatchNorm(smallCnn({ seed: 8, opset })).graph;
      const tensors = ['input', 'r1', 'flat'];
      // stacked on top of a stats graph: names must not collide
      const stats = buildStatsGraph(g, tensors);
      const { graph, outputs } = buildChannelStatsGraph(addOutputs(stats.graph, tensors), tensors);
      const rm = graph.nodes.filter((n) => n.opType === 'ReduceMean');
      expect(rm.length).toBe(6);
      for (const n of rm)
        expect(
          opset >= 18 ? n.inputs.length === 2 && !('axes' in n.attrs) : n.inputs.length === 1 && 'axes' in n.attrs,
        ).toBe(true);
      const fetch = [...tensors, ...[...outputs.values()].flatMap((o) => [o.mean, o.meanSq])];
      const out = await runGraph(graph, feeds(), fetch);
      for (const t of tensors) {
        const { data: x, dims } = out[t];
        const C = dims[1];
        const inner = dims.slice(2).reduce((a, b) => a * b, 1);
        const m = new Float64Array(C),
          m2 = new Float64Array(C);
        for (let i = 0; i < x.length; i++) {
          const c = Math.floor(i / inner) % C;
          m[c] += x[i];
          m2[c] += x[i] * x[i];
        }
        const cnt = x.length / C;
        const o = outputs.get(t)!;
        expect(out[o.mean].dims).toEqual([C]);
        for (let c = 0; c < C; c++) {
          expect(Math.abs(out[o.mean].data[c] - m[c] / cnt), `${t} mean[${c}]`).toBeLessThanOrEqual(
            1e-5 * Math.sqrt(m2[c] / cnt) + 1e-7,
          );
          expect(Math.abs(out[o.meanSq].data[c] - m2[c] / cnt), `${t} meanSq[${c}]`).toBeLessThanOrEqual(
            1e-5 * (m2[c] / cnt) + 1e-7,
          );
        }
      }
    });
  }
});
