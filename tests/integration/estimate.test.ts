/**
 * The background estimate (pipeline/estimate.ts) on the tiny fixture model: it equals a full
 * run of the same config on the same first images; a second config reuses the cached
 * statistics (and from a stored record after a "reload"); an aborted signal cancels it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import type { RunInputs } from '../../src/lib/experiment/types.ts';
import { runPipeline } from '../../src/lib/pipeline/run.ts';
import {
  ESTIMATE_BATCH,
  estimateAccuracy,
  prepareEstimate,
  type EstimateCache,
  type StoredGroupStats,
} from '../../src/lib/pipeline/estimate.ts';
import { memoryDataset, syntheticImages } from '../support/pipeline-helpers.ts';

const MODEL = new Uint8Array(readFileSync(join(import.meta.dirname, '../fixtures/bad-inputs/valid-tiny.onnx')));
const cfg = (extra = {}) =>
  resolveConfig({ backend: 'tensorrt', model: 'test:estimate', calib: 4, eval: 10, seed: 3, ...extra });

describe('background estimate', () => {
  let inputs: RunInputs;
  beforeAll(async () => {
    inputs = {
      engine: await createNodeWasmEngine(1),
      modelBytes: MODEL,
      model: { id: 'test:estimate', label: 'tiny', preprocess: TORCHVISION_SPEC, classes: 10 },
      dataset: memoryDataset(syntheticImages(16, 10, 5), 10, 'estimate'),
    };
  });

  it('equals a full run of the same config on its first images, then reuses the statistics', async () => {
    const cache: EstimateCache = new Map();
    const e = await estimateAccuracy(cfg({ wBits: 4 }), inputs, cache, { images: 6 });
    const [full] = await runPipeline([cfg({ wBits: 4, eval: 6 })], inputs);
    expect(e.images).toBe(6);
    expect(e.top1).toBe(full.quant.top1);
    expect(e.agreement).toBe(full.agreement);
    expect(e.statsCached).toBe(false);
    expect(e.top1Interval[0]).toBeLessThanOrEqual(e.top1);
    expect(e.top1Interval[1]).toBeGreaterThanOrEqual(e.top1);
    const again = await estimateAccuracy(cfg({ wBits: 6 }), inputs, cache, { images: 6 });
    expect(again.statsCached).toBe(true);
    const [full6] = await runPipeline([cfg({ wBits: 6, eval: 6 })], inputs);
    expect(again.top1).toBe(full6.quant.top1);
  });

  it('evaluates in batches of ESTIMATE_BATCH with the numbers of a full run, and says where its time went', async () => {
    const cache: EstimateCache = new Map();
    const n = ESTIMATE_BATCH + 2; // two batches: one full, one partial
    const e = await estimateAccuracy(cfg({ wBits: 5, eval: 12 }), inputs, cache, { images: n });
    const [full] = await runPipeline([cfg({ wBits: 5, eval: n })], inputs);
    expect(e.images).toBe(n);
    expect(e.top1).toBe(full.quant.top1);
    expect(e.agreement).toBe(full.agreement);
    expect(e.fp32Top1).toBe(full.fp32.top1);
    const split = e.split!;
    expect(split.statistics).toBeGreaterThan(0); // collected here
    for (const v of Object.values(split)) expect(v).toBeGreaterThanOrEqual(0);
    expect(split.statistics + split.weights + split.build + split.evaluate).toBeCloseTo(e.seconds, 3);
    // the same weights again, other activation bits: the statistics and the weights come from memory
    const again = await estimateAccuracy(cfg({ wBits: 5, aBits: 6, eval: 12 }), inputs, cache, { images: n });
    expect(again.statsCached).toBe(true);
    const [full6] = await runPipeline([cfg({ wBits: 5, aBits: 6, eval: n })], inputs);
    expect(again.top1).toBe(full6.quant.top1);
    expect(again.agreement).toBe(full6.agreement);
  });

  it('prepares a change ahead only from statistics in memory, and then gives the same numbers', async () => {
    const cache: EstimateCache = new Map();
    expect(await prepareEstimate(cfg({ wBits: 4 }), inputs.dataset.name, cache, { images: 6 })).toBe(false);
    const first = await estimateAccuracy(cfg({ wBits: 4 }), inputs, cache, { images: 6 });
    // a newer change stops it at its next yield
    const ctl = new AbortController();
    const stopped = prepareEstimate(cfg({ wBits: 2 }), inputs.dataset.name, cache, { images: 6, signal: ctl.signal });
    ctl.abort();
    await expect(stopped).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(await prepareEstimate(cfg({ wBits: 3 }), inputs.dataset.name, cache, { images: 6 })).toBe(true);
    // other images or another calibration split: no group in memory serves it
    expect(await prepareEstimate(cfg({ wBits: 3 }), inputs.dataset.name, cache, { images: 5 })).toBe(false);
    expect(await prepareEstimate(cfg({ wBits: 3, calib: 5 }), inputs.dataset.name, cache, { images: 6 })).toBe(false);
    const prepared = await estimateAccuracy(cfg({ wBits: 3 }), inputs, cache, { images: 6 });
    const [full] = await runPipeline([cfg({ wBits: 3, eval: 6 })], inputs);
    expect(prepared.top1).toBe(full.quant.top1);
    expect(prepared.agreement).toBe(full.agreement);
    expect(prepared.fp32Top1).toBe(first.fp32Top1);
  });

  it('rebuilds from stored statistics after a reload, with the same numbers', async () => {
    let saved: StoredGroupStats | undefined;
    const store = {
      load: async (k: string) => (saved?.key === k ? saved : undefined),
      save: async (s: StoredGroupStats) => void (saved = structuredClone(s)),
    };
    const first = await estimateAccuracy(cfg({ wBits: 5 }), inputs, new Map(), { images: 6, store });
    expect(saved).toBeDefined();
    const after = await estimateAccuracy(cfg({ wBits: 5 }), inputs, new Map(), { images: 6, store });
    expect(after.statsCached).toBe(true);
    expect(after.top1).toBe(first.top1);
    expect(after.agreement).toBe(first.agreement);
  });

  it("says when it leaves out the config's weight rounding stage", async () => {
    const cache: EstimateCache = new Map();
    const plain = await estimateAccuracy(cfg({ wBits: 4 }), inputs, cache, { images: 6 });
    expect(plain.ptqSkipped).toBeUndefined();
    const gptq = await estimateAccuracy(cfg({ wBits: 4, ptq: 'gptq' }), inputs, cache, { images: 6 });
    expect(gptq.ptqSkipped).toBe('gptq');
    // round-to-nearest weights: the numbers of the config without the stage
    expect(gptq.top1).toBe(plain.top1);
    expect(gptq.agreement).toBe(plain.agreement);
  });

  it('is cancelled by its signal', async () => {
    const ctl = new AbortController();
    ctl.abort();
    await expect(estimateAccuracy(cfg(), inputs, new Map(), { images: 6, signal: ctl.signal })).rejects.toMatchObject({
      code: 'CANCELLED',
    });
  });
});
