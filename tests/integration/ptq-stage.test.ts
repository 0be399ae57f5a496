import { describe, expect, it } from 'vitest';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { collectGrams, reconstructFromQuantizedPrefix } from '../../src/lib/ptq/reconstruct.ts';
import { buildCrossGramGraph, gramLayout, positionsOf, type GramLayout } from '../../src/lib/ptq/gram-graph.ts';
import { batches } from '../../src/lib/experiment/batches.ts';
import { ensureOpset, insertFakeQuant } from '../../src/lib/onnx/fake-quant.ts';
import { cloneGraph } from '../../src/lib/onnx/ir.ts';
import { serializeModel } from '../../src/lib/onnx/model.ts';
import { quantizeWeights } from '../../src/lib/experiment/quantize.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { findQuantPoints, ALL_PLACEMENT } from '../../src/lib/onnx/placement.ts';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { mulberry32, smallCnn } from '../support/onnx-helpers.ts';

const spec = { ...TORCHVISION_SPEC, resizeShorter: 8, crop: 8 };

function gramLength(l: GramLayout): number {
  return l.groups * l.cols * l.cols;
}

/** Random 8×8 RGB crops (uint8, HWC as the crop cache stores them). */
function crops(n: number): Uint8Array[] {
  const rand = mulberry32(3);
  return Array.from({ length: n }, () => Uint8Array.from({ length: 8 * 8 * 3 }, () => Math.floor(256 * rand())));
}

describe('reconstructFromQuantizedPrefix on a small CNN', () => {
  const g = foldBatchNorm(smallCnn({ seed: 6 })).graph;
  const points = findQuantPoints(g, ALL_PLACEMENT);
  const cfg = (ptq: 'adaround' | 'gptq') =>
    resolveConfig({ backend: 'tensorrt', wBits: 3, wGranularity: 'per-channel', ptq, ptqIters: 300 });

  for (const method of ['adaround', 'gptq'] as const) {
    it(`${method}: reports every layer, lowers the total error and changes only the codes`, async () => {
      const c = cfg(method);
      const rtn = quantizeWeights(g, points, c);
      const engine = await createNodeWasmEngine(1);
      const seen: string[] = [];
      const { weights, report } = await reconstructFromQuantizedPrefix(engine, g, rtn, [], crops(48), spec, c, {
        batchSize: 4,
        onProgress: (d, t, node) => d < t && seen.push(node),
      });
      expect(report.layers.map((l) => l.node)).toEqual(points.weights.map((p) => p.node));
      expect(seen).toEqual(points.weights.map((p) => p.node));
      for (const [i, l] of report.layers.entries()) {
        expect(l.skipped).toBeUndefined();
        // neither method is guaranteed per layer: GPTQ is greedy, and AdaRound's rounding
        // regulariser (λ = 0.01, MQBench's) outweighs the reconstruction term of the tiny
        // 4-input classifier here (measured 1.02–1.2× round-to-nearest on it)
        expect(l.errorAfter, l.node).toBeLessThanOrEqual((method === 'gptq' ? 1.15 : 1.3) * l.errorBefore);
        // still on the observer's grid: every value is an integer multiple of its channel's scale
        const qp = rtn[i].qparams;
        const per = weights[i].values.length / qp.scale.length;
        weights[i].values.forEach((v, k) => {
          const q = v / qp.scale[qp.scale.length === 1 ? 0 : Math.floor(k / per)];
          expect(Math.abs(q - Math.round(q))).toBeLessThan(1e-3);
        });
      }
      expect(report.layers.some((l) => l.flips > 0)).toBe(true);
      const total = (k: 'errorBefore' | 'errorAfter') => report.layers.reduce((s, l) => s + l[k], 0);
      // AdaRound's regulariser dominates on this toy model's tiny outputs (total measured
      // 1.06× round-to-nearest); its error reduction is checked on real layers (ptq-solvers,
      // integration), GPTQ's here
      if (method === 'gptq') expect(total('errorAfter')).toBeLessThan(total('errorBefore'));
      else expect(total('errorAfter')).toBeLessThan(1.2 * total('errorBefore'));
    });
  }

  it('solves each layer with inputs through the already reconstructed prefix, as the result is evaluated', async () => {
    // Every layer's X̃X̃ᵀ and XX̃ᵀ must be those of the final model: its inputs pass through the
    // earlier layers' reconstructed weights. Gathering several layers per pass from one model
    // (earlier layers of the pass still round-to-nearest) fails this from the second layer on.
    const c = cfg('gptq');
    const engine = await createNodeWasmEngine(1);
    const images = crops(16);
    const used = new Map<string, { gram: Float64Array; cross: Float64Array; positions: number }>();
    const { weights } = await reconstructFromQuantizedPrefix(
      engine,
      g,
      quantizeWeights(g, points, c),
      [],
      images,
      spec,
      c,
      {
        batchSize: 4,
        onLayerGrams: (init, gram, cross, positions) =>
          used.set(init, { gram: Float64Array.from(gram), cross: Float64Array.from(cross), positions }),
      },
    );
    expect(used.size).toBe(points.weights.length);
    const fp = cloneGraph(g, { shareInitializers: true });
    ensureOpset(fp, 11);
    const quant = insertFakeQuant(g, {
      weights: new Map(weights.map((w) => [w.point.initializer, w.values])),
      activations: new Map(),
    });
    ensureOpset(quant, 11);
    const layouts = points.weights.map((p) => gramLayout(g, p) as GramLayout);
    const { graph, outputs } = buildCrossGramGraph(fp, quant, layouts);
    const session = await engine.createSession(serializeModel(graph));
    const sums = outputs.map((o) => ({
      o,
      gram: new Float64Array(gramLength(o.layout)),
      cross: new Float64Array(gramLength(o.layout)),
      positions: 0,
    }));
    for (const b of batches(images, spec, 4)) {
      const res = await session.run(
        { [session.inputNames[0]]: b.tensor },
        outputs.flatMap((o) => [o.gram, o.cross, o.shape]),
      );
      for (const s of sums) {
        res[s.o.gram].data.forEach((v, i) => (s.gram[i] += v));
        res[s.o.cross].data.forEach((v, i) => (s.cross[i] += v));
        s.positions += positionsOf(s.o, res[s.o.shape].data);
      }
    }
    await session.release();
    let laterDiffer = 0;
    for (const [i, s] of sums.entries()) {
      const u = used.get(s.o.layout.point.initializer)!;
      expect(u.positions).toBe(s.positions);
      const scale = Math.max(...s.gram.map(Math.abs));
      for (const [mine, ref] of [
        [u.gram, s.gram],
        [u.cross, s.cross],
      ] as const) {
        for (let k = 0; k < ref.length; k++)
          expect(Math.abs(mine[k] - ref[k]), `${s.o.layout.point.node} [${k}]`).toBeLessThan(1e-4 * scale);
      }
      // the check has teeth: from the second layer on, the inputs are not the FP32 ones
      if (i > 0 && s.gram.some((v, k) => Math.abs(v - s.cross[k]) > 1e-3 * scale)) laterDiffer++;
    }
    expect(laterDiffer).toBeGreaterThan(0);
    // and with FP32 inputs everywhere (the other mode) the first layer's Gram is the same
    const plain = await collectGrams(engine, g, points, images, spec, { batchSize: 4 });
    const first = plain.get(points.weights[0].initializer)!;
    first.gram.forEach((v, k) =>
      expect(Math.abs(v - sums[0].gram[k])).toBeLessThan(1e-4 * Math.max(...first.gram.map(Math.abs))),
    );
  });

  it('stops between layers when cancelled', async () => {
    const c = cfg('gptq');
    const ctl = new AbortController();
    const engine = await createNodeWasmEngine(1);
    const run = reconstructFromQuantizedPrefix(engine, g, quantizeWeights(g, points, c), [], crops(4), spec, c, {
      batchSize: 4,
      signal: ctl.signal,
      onProgress: (d) => d === 1 && ctl.abort(),
    });
    await expect(run).rejects.toThrow(/cancelled/);
  });
});
