import { describe, expect, it } from 'vitest';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import { resolveConfig } from '../../src/lib/experiment/config.ts';
import { reconstructFromQuantizedPrefix } from '../../src/lib/ptq/reconstruct.ts';
import { quantizeWeights } from '../../src/lib/experiment/quantize.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { findQuantPoints } from '../../src/lib/onnx/placement.ts';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { mulberry32, smallCnn } from './onnx-helpers.ts';

const ALL = { conv: true, gemm: true, add: true, pool: true, concat: true, modelInput: true };
const spec = { ...TORCHVISION_SPEC, resizeShorter: 8, crop: 8 };

/** Random 8×8 RGB crops (uint8, HWC as the crop cache stores them). */
function crops(n: number): Uint8Array[] {
  const rand = mulberry32(3);
  return Array.from({ length: n }, () => Uint8Array.from({ length: 8 * 8 * 3 }, () => Math.floor(256 * rand())));
}

describe('reconstructFromQuantizedPrefix on a small CNN', () => {
  const g = foldBatchNorm(smallCnn({ seed: 6 })).graph;
  const points = findQuantPoints(g, ALL);
  const cfg = (ptq: 'adaround' | 'gptq') => resolveConfig({ backend: 'tensorrt', wBits: 3, wGranularity: 'per-channel', ptq, ptqIters: 300 });

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
