/**
 * Block-wise reconstruction (BRECQ, QDrop, AdaRound with learned step sizes) end to end on a
 * tiny MobileNet-like CNN at W4A4 with a few steps: every trained unit's output error goes
 * down, the learned weights stay on their grids, the learned step sizes and weights build a
 * fake-quant model that computes what the last unit's report says, progress counts every
 * step and a cancel stops the run between steps. Blocks and layers of the real
 * architectures are found in tests/unit/ptq-units.test.ts; the gradients are checked in
 * ptq-train-graph.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import type { PreprocessSpec } from '../../src/lib/data/types.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { collectActivationStats } from '../../src/lib/experiment/calibrate.ts';
import { quantizeActivations, quantizeWeights } from '../../src/lib/experiment/quantize.ts';
import { batches } from '../../src/lib/experiment/batches.ts';
import { insertFakeQuant } from '../../src/lib/onnx/fake-quant.ts';
import { type Graph, makeGraph, makeNode, makeTensor, makeValueInfo } from '../../src/lib/onnx/ir.ts';
import { serializeModel } from '../../src/lib/onnx/model.ts';
import { findQuantPoints } from '../../src/lib/onnx/placement.ts';
import { blockReconOptions, reconstructBlocks, usesEngineGradients } from '../../src/lib/ptq/block-recon.ts';
import { reconstructConfig } from '../../src/lib/ptq/stage.ts';
import { mulberry32, randn } from '../support/onnx-helpers.ts';

const SPEC: PreprocessSpec = {
  resizeShorter: 16,
  crop: 16,
  interpolation: 'bilinear',
  mean: [0.5, 0.5, 0.5],
  std: [0.25, 0.25, 0.25],
  layout: 'NCHW',
};

/**
 * input [N,3,16,16] → stem Conv 3×3 s2 (3→8) + Clip(0,6) → inverted residual (1×1 8→16,
 * Clip, depthwise 3×3, Clip, 1×1 16→8, Add) → block without residual (1×1 8→16, Clip,
 * depthwise 3×3 s2, Clip, 1×1 16→12) → GlobalAveragePool → Flatten → Gemm 12→5.
 */
function tinyNet(seed: number): Graph {
  const rng = mulberry32(seed);
  const t = (name: string, dims: number[], scale: number) =>
    makeTensor(
      name,
      dims,
      randn(
        rng,
        dims.reduce((a, b) => a * b, 1),
        scale,
      ),
    );
  const clip = (x: string, y: string) => makeNode('Clip', [x, 'zero', 'six'], [y], {}, { name: `clip_${y}` });
  const conv = (x: string, w: string, y: string, k: number, stride = 1, group = 1) =>
    makeNode(
      'Conv',
      [x, w, `${w}_b`],
      [y],
      { kernel_shape: [k, k], strides: [stride, stride], pads: k === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0], group },
      { name: `conv_${y}` },
    );
  const weights: [string, number[], number][] = [
    ['stem', [8, 3, 3, 3], 0.4],
    ['e1', [16, 8, 1, 1], 0.35],
    ['d1', [16, 1, 3, 3], 0.5],
    ['p1', [8, 16, 1, 1], 0.25],
    ['e2', [16, 8, 1, 1], 0.35],
    ['d2', [16, 1, 3, 3], 0.5],
    ['p2', [12, 16, 1, 1], 0.25],
  ];
  return makeGraph({
    opset: 13,
    inputs: [makeValueInfo('input', ['N', 3, 16, 16])],
    outputs: [makeValueInfo('logits', ['N', 5])],
    initializers: [
      ...weights.flatMap(([n, d, s]) => [t(n, d, s), t(`${n}_b`, [d[0]], 0.2)]),
      t('fc', [5, 12], 0.5),
      t('fc_b', [5], 0.1),
      makeTensor('zero', [], [0]),
      makeTensor('six', [], [6]),
    ],
    nodes: [
      conv('input', 'stem', 's0', 3, 2),
      clip('s0', 's'),
      conv('s', 'e1', 'a0', 1),
      clip('a0', 'a'),
      conv('a', 'd1', 'b0', 3, 1, 16),
      clip('b0', 'b'),
      conv('b', 'p1', 'c', 1),
      makeNode('Add', ['s', 'c'], ['r1'], {}, { name: 'add1' }),
      conv('r1', 'e2', 'f0', 1),
      clip('f0', 'f'),
      conv('f', 'd2', 'h0', 3, 2, 16),
      clip('h0', 'h'),
      conv('h', 'p2', 'p', 1),
      makeNode('GlobalAveragePool', ['p'], ['gap'], {}, { name: 'gap' }),
      makeNode('Flatten', ['gap'], ['flat'], { axis: 1 }, { name: 'flatten' }),
      makeNode('Gemm', ['flat', 'fc', 'fc_b'], ['logits'], { transB: 1 }, { name: 'fc' }),
    ],
  });
}

function crops(n: number, seed: number): Uint8Array[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => Uint8Array.from({ length: 16 * 16 * 3 }, () => Math.floor(256 * rand())));
}

async function setup(ptq: 'adaround' | 'brecq' | 'qdrop', iters: number) {
  const g = tinyNet(5);
  const cfg = resolveConfig({
    backend: 'academic',
    wBits: 4,
    aBits: 4,
    ptq,
    ptqIters: iters,
    ptqActRanges: 'learned',
    firstLast8bit: false,
  });
  const points = findQuantPoints(g, cfg.placement);
  const engine = await createNodeWasmEngine(2);
  const images = crops(24, 9);
  const stats = await collectActivationStats(
    engine,
    g,
    points.activations.map((p) => p.tensor),
    images,
    SPEC,
    { batchSize: 8, histBatchSize: 8, histogram: true, moments: false, bins: 128 },
  );
  return {
    g,
    cfg,
    engine,
    images,
    weights: quantizeWeights(g, points, cfg),
    acts: quantizeActivations(points, stats, cfg),
  };
}

/** Relative squared error of the fake-quant model's logits against FP32 on the images. */
async function modelError(
  s: Awaited<ReturnType<typeof setup>>,
  weights: typeof s.weights,
  acts: typeof s.acts,
): Promise<number> {
  const fq = insertFakeQuant(s.g, {
    weights: new Map(weights.map((w) => [w.point.initializer, w.values])),
    activations: new Map(acts.map((a) => [a.point.tensor, a.qparams])),
  });
  const [qs, fs] = [
    await s.engine.createSession(serializeModel(fq)),
    await s.engine.createSession(serializeModel(s.g)),
  ];
  let err = 0;
  let energy = 0;
  for (const b of batches(s.images, SPEC, 8)) {
    const y = (await qs.run({ input: b.tensor }))['logits'].data;
    const t = (await fs.run({ input: b.tensor }))['logits'].data;
    for (let i = 0; i < y.length; i++) {
      err += (y[i] - t[i]) ** 2;
      energy += t[i] ** 2;
    }
  }
  await qs.release();
  await fs.release();
  return err / energy;
}

describe('block-wise reconstruction on a tiny CNN (W4A4)', () => {
  for (const method of ['brecq', 'qdrop', 'adaround'] as const) {
    it(`${method}: lowers every block's error (never raises a unit's), keeps weights on the grid, and its model computes what it reports`, async () => {
      const s = await setup(method, 60);
      expect(usesEngineGradients(s.cfg)).toBe(true);
      const progress: number[] = [];
      const r = await reconstructBlocks(s.engine, s.g, s.weights, s.acts, s.images, SPEC, {
        ...blockReconOptions(s.cfg),
        hyper: { batch: 4, evalBatch: 8 },
        onProgress: (d, t) => {
          progress.push(d);
          expect(t).toBe((method === 'adaround' ? 8 : 4) * 60);
        },
      });
      const units = r.report.units!;
      // blocks: stem chain, the inverted residual, the block without residual, the classifier
      expect(units.map((u) => u.layers.length)).toEqual(
        method === 'adaround' ? [1, 1, 1, 1, 1, 1, 1, 1] : [1, 3, 3, 1],
      );
      for (const u of units) {
        expect(u.skipped).toBeUndefined();
        // lower, or (when the learned result ended above the entry) the entry kept as it was
        if (u.keptEntry) expect(u.errorAfter, u.name).toBe(u.errorBefore);
        else expect(u.errorAfter, u.name).toBeLessThan(u.errorBefore);
        expect(u.scales.length).toBeGreaterThan(0);
      }
      console.log(
        `${method}: entry kept in ${
          units
            .filter((u) => u.keptEntry)
            .map((u) => u.name)
            .join(', ') || 'no unit'
        }`,
      );
      // the blocks of several layers, where reconstruction has room, are lowered
      for (const u of units.filter((x) => x.layers.length > 1)) expect(u.keptEntry, u.name).toBeUndefined();
      expect(units.some((u) => u.scales.some((sc) => sc.after !== sc.before))).toBe(true);
      expect(progress.at(-1)).toBe(progress.length > 0 ? Math.max(...progress) : 0);
      expect(Math.max(...progress)).toBe((method === 'adaround' ? 8 : 4) * 60);
      // weights: every value an integer multiple of its channel's step, some rounded away from nearest
      for (const [i, w] of r.weights.entries()) {
        const qp = w.qparams;
        const per = w.values.length / qp.scale.length;
        w.values.forEach((v, k) => {
          const q = v / qp.scale[qp.scale.length === 1 ? 0 : Math.floor(k / per)];
          expect(Math.abs(q - Math.round(q))).toBeLessThan(1e-3);
        });
        expect(w.point.initializer).toBe(s.weights[i].point.initializer);
      }
      expect(r.report.layers.some((l) => l.flips > 0)).toBe(true);
      // the last unit ends at the logits, and its input came from the final quantized prefix:
      // its reported error is the whole model's
      const final = await modelError(s, r.weights, r.activations);
      expect(final).toBeCloseTo(units.at(-1)!.errorAfter, 4);
      expect(final).toBeLessThan(await modelError(s, s.weights, s.acts));
    });
  }

  it('stops between steps when cancelled, and reconstructConfig hands back the learned step sizes', async () => {
    const s = await setup('qdrop', 40);
    const ac = new AbortController();
    let steps = 0;
    await expect(
      reconstructBlocks(s.engine, s.g, s.weights, s.acts, s.images, SPEC, {
        ...blockReconOptions(s.cfg),
        hyper: { batch: 4, evalBatch: 8 },
        signal: ac.signal,
        onProgress: (d) => {
          steps = d;
          if (d >= 50) ac.abort();
        },
      }),
    ).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(steps).toBeGreaterThanOrEqual(50);
    expect(steps).toBeLessThan(80);

    const messages: string[] = [];
    const out = await reconstructConfig(
      {
        engine: s.engine,
        graph: s.g,
        points: findQuantPoints(s.g, s.cfg.placement),
        weights: s.weights,
        activations: s.acts,
        spec: SPEC,
        calibCrops: s.images,
        batchSize: 4,
        shared: new Map(),
        onProgress: (m) => messages.push(m),
      },
      { ...s.cfg, ptqIters: 5 },
    );
    expect(out.report.method).toBe('qdrop');
    expect(out.report.dropProb).toBe(0.5);
    expect(out.activations?.map((a) => a.point.tensor)).toEqual(s.acts.map((a) => a.point.tensor));
    expect(out.activations!.some((a, i) => a.qparams.scale[0] !== s.acts[i].qparams.scale[0])).toBe(true);
    expect(messages.some((m) => /QDrop 2\/4/.test(m))).toBe(true);
  });
});
