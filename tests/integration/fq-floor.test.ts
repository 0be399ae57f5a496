/**
 * The Round-free fake-quant form for WebGPU (onnx/fq-floor.ts) on the wasm engine: the same
 * outputs as the element-wise chain insertFakeQuant builds, value for value, for every 8-bit
 * flavour, a 4-bit and a 16-bit one, per-channel bounds, and saturation (the activation ranges
 * clip 20 % of each tensor's extremes, and the inputs reach far beyond them); bit for bit the
 * outputs of the Q/DQ form the CPU engines evaluate; and on the real MobileNet-V2, all 65
 * quantizers replaced with the same logits on real images.
 */
import { describe, expect, it } from 'vitest';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import type { FloatTensor, SessionOptions } from '../../src/lib/engine/types.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import { prepareCrops } from '../../src/lib/data/crops.ts';
import { loadImageFolder } from '../../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { batches } from '../../src/lib/experiment/batches.ts';
import { quantizeActivations, quantizeWeights } from '../../src/lib/experiment/quantize.ts';
import { insertFakeQuant } from '../../src/lib/onnx/fake-quant.ts';
import { fakeQuantWithoutRound } from '../../src/lib/onnx/fq-floor.ts';
import { fakeQuantAsQdq, QDQ_SESSION_CONFIG } from '../../src/lib/onnx/fq-qdq.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import type { Graph } from '../../src/lib/onnx/ir.ts';
import { parseModel, serializeModel } from '../../src/lib/onnx/model.ts';
import { ALL_PLACEMENT, findQuantPoints } from '../../src/lib/onnx/placement.ts';
import { simulate } from '../support/export-helpers.ts';
import { mulberry32, randn, smallCnn } from '../support/onnx-helpers.ts';
import { HAVE_SHARED_DATA, readModel, SAMPLE_DIR } from '../support/shared-data.ts';

async function outputs(
  g: Graph,
  feeds: Record<string, FloatTensor>,
  options: SessionOptions = {},
): Promise<Float32Array> {
  const engine = await createNodeWasmEngine(2);
  const s = await engine.createSession(serializeModel(g), { optimization: 'all', ...options });
  try {
    return (await s.run(feeds))[s.outputNames[0]].data;
  } finally {
    await s.release();
  }
}

/** Indices where a and b differ as numbers (NaN equals NaN), at most 5. */
function differing(a: Float32Array, b: Float32Array): number[] {
  const bad: number[] = [];
  for (let i = 0; i < a.length && bad.length < 5; i++)
    if (a[i] !== b[i] && !(a[i] !== a[i] && b[i] !== b[i])) bad.push(i);
  return bad;
}

/** Indices where the float32 bit patterns of a and b differ (−0 ≠ +0), at most 5. */
function differingBits(a: Float32Array, b: Float32Array): number[] {
  const [x, y] = [new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer, b.byteOffset, b.length)];
  const bad: number[] = [];
  for (let i = 0; i < x.length && bad.length < 5; i++) if (x[i] !== y[i]) bad.push(i);
  return bad;
}

const feeds = (k: number): Record<string, FloatTensor> => ({
  input: { data: randn(mulberry32(300 + k), 16 * 3 * 8 * 8, 1 + 2 * k), dims: [16, 3, 8, 8] },
});

const cases: [string, Partial<ExperimentConfig>][] = [
  ['TensorRT, narrow signed symmetric', { backend: 'tensorrt', placement: ALL_PLACEMENT }],
  ['Academic, asymmetric unsigned', { backend: 'academic', placement: ALL_PLACEMENT }],
  ['signed asymmetric, full range', { backend: 'academic', placement: ALL_PLACEMENT, aSign: 'signed' }],
  ['power-of-two scales, narrow', { backend: 'tensorrt', placement: ALL_PLACEMENT, aPowerOfTwo: true }],
  ['W8A4', { backend: 'academic', placement: ALL_PLACEMENT, aBits: 4, firstLast8bit: false }],
  ['W8A16', { backend: 'academic', placement: ALL_PLACEMENT, aBits: 16, firstLast8bit: false }],
];

describe('fake-quant without Round (WebGPU form) on wasm', () => {
  for (const [label, over] of cases) {
    it(`${label}: the element-wise chain's outputs, and the Q/DQ form's bit for bit`, async () => {
      const sim = await simulate(resolveConfig(over));
      const { graph, report } = fakeQuantWithoutRound(sim.evaluated);
      const rounds = sim.evaluated.nodes.filter((n) => n.opType === 'Round').length;
      expect(rounds).toBeGreaterThan(0);
      expect(report).toEqual({ replaced: rounds, kept: 0 });
      expect(graph.nodes.filter((n) => n.opType === 'Round')).toHaveLength(0);
      const qdq = fakeQuantAsQdq(sim.evaluated);
      for (let k = 0; k < 3; k++) {
        const f = feeds(k);
        const want = await outputs(sim.evaluated, f);
        const got = await outputs(graph, f);
        expect(differing(got, want), `input set ${k}`).toEqual([]);
        if (qdq.report.kept === 0) {
          const q = await outputs(qdq.graph, f, { config: QDQ_SESSION_CONFIG });
          expect(differingBits(got, q), `input set ${k}, Q/DQ`).toEqual([]);
        }
      }
    });
  }

  it('per-channel bounds (Max → Min): the same outputs', async () => {
    const g = foldBatchNorm(smallCnn()).graph;
    const t = g.nodes.find((n) => n.opType === 'Conv')!.outputs[0];
    const C = 4;
    const fq = insertFakeQuant(g, {
      weights: new Map(),
      activations: new Map([
        [
          t,
          {
            scale: Float32Array.from({ length: C }, (_, c) => 0.01 + 0.013 * c),
            zeroPoint: Int32Array.from({ length: C }, (_, c) => c * 3 - 4),
            qmin: -8,
            qmax: 7,
            axis: 1,
          },
        ],
      ]),
    });
    expect(fq.nodes.map((n) => n.opType)).toContain('Max');
    const { graph, report } = fakeQuantWithoutRound(fq);
    expect(report).toEqual({ replaced: 1, kept: 0 });
    for (let k = 0; k < 3; k++) {
      const f = feeds(k);
      expect(differing(await outputs(graph, f), await outputs(fq, f)), `input set ${k}`).toEqual([]);
    }
  });

  it('leaves a Round that is not clamped to whole bounds, and never mutates its input', async () => {
    const sim = await simulate(resolveConfig({ backend: 'tensorrt', placement: ALL_PLACEMENT }));
    const g = structuredClone(sim.evaluated);
    const clip = g.nodes.find((n) => n.opType === 'Clip' && n.name.endsWith('_fq/Clip'))!;
    const lo = `${clip.name}_lo_frac`;
    g.initializers.set(lo, { name: lo, dtype: 'float32', dims: [], data: Float32Array.of(-127.5) });
    clip.inputs[1] = lo;
    const before = g.nodes.map((n) => `${n.opType}:${n.inputs.join(',')}`).join();
    const { graph, report } = fakeQuantWithoutRound(g);
    expect(report.kept).toBe(1);
    expect(graph.nodes.filter((n) => n.opType === 'Round')).toHaveLength(1);
    expect(g.nodes.map((n) => `${n.opType}:${n.inputs.join(',')}`).join()).toBe(before);
  });
});

describe.skipIf(!HAVE_SHARED_DATA)('fake-quant without Round on the real MobileNet-V2', () => {
  it('replaces all 65 quantizers and gives the same logits on 16 real images', async () => {
    const graph = foldBatchNorm(parseModel(readModel())).graph;
    const points = findQuantPoints(graph, ALL_PLACEMENT);
    const cfg = resolveConfig({ backend: 'tensorrt' });
    const dataset = await loadImageFolder(SAMPLE_DIR);
    const { crops } = await prepareCrops(dataset.items.slice(0, 16), TORCHVISION_SPEC, undefined, {});
    const imgs = crops.filter((c): c is Uint8Array => !!c);
    const batch = [...batches(imgs, TORCHVISION_SPEC, 16)][0].tensor;
    // ranges from the first image's activations, so the others saturate somewhere
    const probe = {
      ...graph,
      outputs: [
        ...graph.outputs,
        ...points.activations.map((p) => ({ name: p.tensor, dtype: 'float32' as const, shape: null })),
      ],
    };
    const engine = await createNodeWasmEngine(2);
    const s = await engine.createSession(serializeModel(probe));
    const one = { data: batch.data.subarray(0, 3 * 224 * 224), dims: [1, 3, 224, 224] };
    const acts = await s.run({ input: one });
    await s.release();
    const stats = new Map(
      points.activations.map((p) => {
        const d = acts[p.tensor].data;
        let [min, max] = [Infinity, -Infinity];
        for (const v of d) [min, max] = [Math.min(min, v), Math.max(max, v)];
        return [p.tensor, { batches: [{ min, max, sum: NaN, sumSq: NaN, count: d.length }] }];
      }),
    );
    const weights = quantizeWeights(graph, points, cfg);
    const fq = insertFakeQuant(graph, {
      weights: new Map(weights.map((w) => [w.point.initializer, w.values])),
      activations: new Map(quantizeActivations(points, stats, cfg).map((a) => [a.point.tensor, a.qparams])),
    });
    const { graph: rf, report } = fakeQuantWithoutRound(fq);
    expect(report).toEqual({ replaced: 65, kept: 0 });
    const f = { input: batch };
    const want = await outputs(fq, f);
    const got = await outputs(rf, f);
    expect(differing(got, want)).toEqual([]);
    const qdq = await outputs(fakeQuantAsQdq(fq).graph, f, { config: QDQ_SESSION_CONFIG });
    expect(differingBits(got, qdq)).toEqual([]);
  });
});
