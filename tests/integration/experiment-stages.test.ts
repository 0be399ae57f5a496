/**
 * The pipeline's plug-in points (experiment/stages.ts): experiment/run.ts runs without
 * analysis/ and refuses a config that needs a stage nobody plugged in; a plugged-in fix
 * stage is asked and its graph is what gets evaluated; src/lib/pipeline/run.ts plugs in
 * the analysis layer's stages, so the same config runs there.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import type { Engine } from '../../src/lib/engine/types.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { runPipeline } from '../../src/lib/experiment/run.ts';
import type { PipelineStages } from '../../src/lib/experiment/stages.ts';
import type { RunInputs } from '../../src/lib/experiment/types.ts';
import { runExperiments } from '../../src/lib/pipeline/run.ts';
import { QpError } from '../../src/lib/util/errors.ts';
import { memoryDataset, syntheticImages } from '../support/pipeline-helpers.ts';

const MODEL = new Uint8Array(readFileSync(join(import.meta.dirname, '../fixtures/bad-inputs/valid-tiny.onnx'))); // 10 classes
const cfg = (extra = {}) =>
  resolveConfig({ backend: 'tensorrt', model: 'test:stages', calib: 4, eval: 6, seed: 3, ...extra });

describe('pipeline stages', () => {
  let engine: Engine;
  let inputs: RunInputs;
  beforeAll(async () => {
    engine = await createNodeWasmEngine(1);
    inputs = {
      engine,
      modelBytes: MODEL,
      model: { id: 'test:stages', label: 'tiny', preprocess: TORCHVISION_SPEC, classes: 10 },
      dataset: memoryDataset(syntheticImages(10, 10, 5), 10, 'stages'),
    };
  });

  it('runs a plain config with no stage plugged in, with the numbers of the full pipeline', async () => {
    const [bare] = await runPipeline([cfg()], inputs);
    const [full] = await runExperiments([cfg()], inputs);
    expect(bare.quant).toEqual(full.quant);
    expect(bare.agreement).toBe(full.agreement);
    expect(bare.fixes).toBeUndefined();
  });

  it('refuses a fix or an analysis that no stage provides, with a sentence naming the way out', async () => {
    const err = await runPipeline([cfg({ biasCorrection: true })], inputs).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QpError);
    expect((err as QpError).message).toMatch(/without the fix stage.*src\/lib\/pipeline\/run\.ts/);
    await expect(runPipeline([cfg()], inputs, { analyze: true })).rejects.toThrow(/without the analysis stage/);
  });

  it('refuses a weight rounding method without the reconstruction stage, and uses the weights a plugged-in one returns', async () => {
    await expect(runPipeline([cfg({ wBits: 4, ptq: 'gptq' })], inputs)).rejects.toThrow(
      /gptq weight rounding.*without the reconstruction stage/,
    );
    const seen: string[] = [];
    const stages: PipelineStages = {
      weights: {
        wanted: (c) => c.ptq !== 'none',
        apply: async (ctx, c) => {
          seen.push(c.ptq);
          expect(ctx.calibCrops.length).toBe(4);
          // zero weights: the model's output no longer depends on the input
          const weights = ctx.weights.map((w) => ({ ...w, values: new Float32Array(w.values.length) }));
          return { weights, report: { method: 'gptq', layers: [], gramSeconds: 0, solveSeconds: 0 } };
        },
      },
    };
    const [plain, zeroed] = await runPipeline([cfg({ wBits: 4 }), cfg({ wBits: 4, ptq: 'gptq' })], inputs, { stages });
    expect(seen).toEqual(['gptq']);
    expect(plain.ptq).toBeUndefined();
    expect(zeroed.ptq?.method).toBe('gptq');
    expect(zeroed.agreement).not.toBe(plain.agreement);
  });

  it('evaluates the graph a plugged-in fix stage returns and reports its report', async () => {
    const asked: boolean[] = [];
    const stages: PipelineStages = {
      fix: {
        wanted: (c) => c.bnReestimate,
        apply: async (ctx, c) => {
          asked.push(c.bnReestimate);
          expect(ctx.calibCrops.length).toBe(4);
          return { graph: ctx.graph, report: { passes: [] } as never }; // the FP32 graph: "fixed" to no error
        },
      },
    };
    const [r] = await runPipeline([cfg({ bnReestimate: true })], inputs, { stages });
    expect(asked).toEqual([true]);
    expect(r.quant).toEqual(r.fp32); // the FP32 graph was evaluated as the quantized one
    expect(r.agreement).toBe(1);
    expect(r.beforeFixes).toBeDefined();
    expect(r.fixes).toEqual({ passes: [] });
  });

  it('the full pipeline plugs in the real fixes and analysis', async () => {
    const [r] = await runExperiments([cfg({ biasCorrection: true })], inputs, { analyze: { images: 4 } });
    expect(r.fixes).toBeDefined();
    expect(r.beforeFixes).toBeDefined();
    expect(r.layers!.length).toBeGreaterThan(0);
  });
});
