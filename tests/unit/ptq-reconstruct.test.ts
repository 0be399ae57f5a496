/**
 * Which layers reconstruction touches (src/lib/ptq/reconstruct.ts): layers of 8 bits or
 * more keep round-to-nearest in both input modes, narrower ones are solved. The
 * quantized-prefix mode needs the engine for every layer it solves, so an engine that
 * refuses every session shows which layers it would solve; the FP32-input mode takes
 * Gram matrices and runs here in full.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import type { Engine } from '../../src/lib/engine/types.ts';
import { quantizeWeights } from '../../src/lib/experiment/quantize.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { findQuantPoints, ALL_PLACEMENT } from '../../src/lib/onnx/placement.ts';
import { gramLayout, type GramLayout } from '../../src/lib/ptq/gram-graph.ts';
import { reconstructFromQuantizedPrefix, reconstructWeights, type LayerGram } from '../../src/lib/ptq/reconstruct.ts';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { mulberry32, smallCnn } from '../support/onnx-helpers.ts';

const g = foldBatchNorm(smallCnn({ seed: 6 })).graph;
const points = findQuantPoints(g, ALL_PLACEMENT);
const cfg = (wBits: number, ptq: 'gptq' | 'adaround' = 'gptq') =>
  resolveConfig({ backend: 'tensorrt', wBits, wGranularity: 'per-channel', firstLast8bit: false, ptq, ptqIters: 20 });
const EIGHT = '8-bit layers keep round-to-nearest';

/** An engine that refuses every session and counts the attempts. */
function refusingEngine(): { engine: Engine; sessions: () => number } {
  let n = 0;
  const engine = {
    createSession: async () => {
      n++;
      throw new Error('engine session requested');
    },
  } as unknown as Engine;
  return { engine, sessions: () => n };
}

const prefix = (engine: Engine, wBits: number) => {
  const c = cfg(wBits);
  const rtn = quantizeWeights(g, points, c);
  const run = reconstructFromQuantizedPrefix(engine, g, rtn, [], [], TORCHVISION_SPEC, c, {
    batchSize: 4,
    cutCacheBytes: 0,
  });
  return { rtn, run };
};

describe('quantized-prefix reconstruction by bit width', () => {
  it('8-bit layers keep round-to-nearest: no engine pass, the same weights, each layer reported as skipped', async () => {
    const { engine, sessions } = refusingEngine();
    const { rtn, run } = prefix(engine, 8);
    const { weights, report } = await run;
    expect(sessions()).toBe(0);
    expect(weights.map((w) => w.values)).toEqual(rtn.map((w) => w.values));
    expect(report.layers.map((l) => [l.node, l.bits, l.skipped])).toEqual(
      points.weights.map((p) => [p.node, 8, EIGHT]),
    );
  });

  for (const bits of [4, 7]) {
    it(`${bits}-bit layers are solved: the first one asks the engine for its pass`, async () => {
      const { engine, sessions } = refusingEngine();
      await expect(prefix(engine, bits).run).rejects.toThrow('engine session requested');
      expect(sessions()).toBe(1);
    });
  }

  it('refuses to run without a method', async () => {
    const { engine } = refusingEngine();
    const c = resolveConfig({ backend: 'tensorrt', wBits: 4 });
    await expect(
      reconstructFromQuantizedPrefix(engine, g, quantizeWeights(g, points, c), [], [], TORCHVISION_SPEC, c, {
        batchSize: 4,
      }),
    ).rejects.toThrow(/needs a reconstruction method/);
  });
});

/** X̃ᵀX̃ of random inputs for a layer, as collectGrams would gather it. */
function randomGram(l: GramLayout, positions: number, seed: number): LayerGram {
  const rand = mulberry32(seed);
  const gram = new Float64Array(l.groups * l.cols * l.cols);
  const x = new Float64Array(l.cols);
  for (let gi = 0; gi < l.groups; gi++)
    for (let p = 0; p < positions; p++) {
      for (let i = 0; i < l.cols; i++) x[i] = rand() * 2 - 1;
      for (let i = 0; i < l.cols; i++)
        for (let j = 0; j < l.cols; j++) gram[gi * l.cols * l.cols + i * l.cols + j] += x[i] * x[j];
    }
  return { layout: l, gram, positions };
}

describe('FP32-input reconstruction by bit width', () => {
  const grams = new Map(
    points.weights.map((p, i) => {
      const l = gramLayout(g, p) as GramLayout;
      return [p.initializer, randomGram(l, 64, 10 + i)] as const;
    }),
  );

  it('8-bit layers keep round-to-nearest; a layer without a Gram matrix says so', async () => {
    const c = cfg(8);
    const rtn = quantizeWeights(g, points, c);
    const partial = new Map([...grams].slice(1));
    const { weights, report } = await reconstructWeights(g, rtn, partial, c);
    expect(weights).toEqual(rtn);
    expect(report.layers.map((l) => l.skipped)).toEqual([
      'no Gram matrix for this layer',
      ...points.weights.slice(1).map(() => EIGHT),
    ]);
    expect(report.layers.every((l) => l.bits === 8 && l.flips === 0 && Number.isNaN(l.errorAfter))).toBe(true);
  });

  for (const method of ['gptq', 'adaround'] as const) {
    it(`${method}: 4-bit layers are solved on the observer's grid and reported with their errors`, async () => {
      const c = cfg(4, method);
      const rtn = quantizeWeights(g, points, c);
      const progress: string[] = [];
      const { weights, report } = await reconstructWeights(g, rtn, grams, c, {
        onProgress: (d, t, node) => progress.push(`${d}/${t} ${node}`),
      });
      expect(report.method).toBe(method);
      expect(report.iters).toBe(method === 'adaround' ? 20 : undefined);
      expect(progress).toEqual([
        ...points.weights.map((p, i) => `${i}/${points.weights.length} ${p.node}`),
        `${points.weights.length}/${points.weights.length} `,
      ]);
      for (const [i, l] of report.layers.entries()) {
        expect(l.skipped, l.node).toBeUndefined();
        expect(l.bits).toBe(4);
        expect(l.errorBefore).toBeGreaterThan(0);
        // GPTQ is greedy: no promise per layer, but in total (below)
        if (method === 'gptq') expect(l.errorAfter).toBeLessThanOrEqual(l.errorBefore * 1.15);
        const qp = rtn[i].qparams;
        const per = weights[i].values.length / qp.scale.length;
        weights[i].values.forEach((v, k) => {
          const q = v / qp.scale[Math.floor(k / per)];
          expect(Math.abs(q - Math.round(q))).toBeLessThan(1e-3);
          expect(Math.round(q)).toBeGreaterThanOrEqual(qp.qmin);
          expect(Math.round(q)).toBeLessThanOrEqual(qp.qmax);
        });
      }
      expect(report.layers.some((l) => l.flips > 0)).toBe(true);
      const total = (k: 'errorBefore' | 'errorAfter') => report.layers.reduce((t, l) => t + l[k], 0);
      if (method === 'gptq') expect(total('errorAfter')).toBeLessThan(total('errorBefore'));
    });
  }

  it('refuses to run without a method', async () => {
    const c = resolveConfig({ backend: 'tensorrt', wBits: 4 });
    await expect(reconstructWeights(g, quantizeWeights(g, points, c), grams, c)).rejects.toThrow(
      /needs a reconstruction method/,
    );
  });
});
