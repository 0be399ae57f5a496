/**
 * The pipeline evaluates what block reconstruction learned: a QDrop run through the one
 * pipeline loop builds its fake-quant graph with the activation step sizes the
 * reconstruction reports (not the calibrated ones), and an A4 and an A8 config with the same
 * weight settings do not share one reconstruction. Tiny CNN, a few steps: the test is about
 * the wiring, not the accuracy (tests/integration/ptq-block-recon.test.ts checks the method).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { initJpegDecoder } from '../../src/lib/data/decode.ts';
import { createNodeNativeEngine } from '../../src/lib/engine/node.ts';
import type { Engine } from '../../src/lib/engine/types.ts';
import type { QuantizedRun, RunInputs } from '../../src/lib/experiment/types.ts';
import { serializeModel } from '../../src/lib/onnx/model.ts';
import { runPipeline } from '../../src/lib/pipeline/run.ts';
import { smallCnn } from '../support/onnx-helpers.ts';
import { memoryDataset, syntheticImages } from '../support/pipeline-helpers.ts';

const CLASSES = 5;

describe('block reconstruction through the pipeline loop', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await createNodeNativeEngine(1);
    await initJpegDecoder();
  });

  it('evaluates the learned step sizes, and A4 and A8 get their own reconstruction', async () => {
    const common = { backend: 'academic', model: 'test:learned', calib: 4, eval: 6, seed: 1, wBits: 4 } as const;
    const a4 = resolveConfig({ ...common, aBits: 4, ptq: 'qdrop', ptqIters: 12 });
    const a8 = resolveConfig({ ...common, aBits: 8, ptq: 'qdrop', ptqIters: 12 });
    const nearest = resolveConfig({ ...common, aBits: 4 });
    const inputs: RunInputs = {
      engine,
      modelBytes: serializeModel(smallCnn({ seed: 5, relu6Clip: true })),
      model: { id: 'test:learned', label: 'tiny', preprocess: TORCHVISION_SPEC, classes: CLASSES },
      dataset: memoryDataset(syntheticImages(10, CLASSES, 3), CLASSES, 'learned'),
    };
    const runs = new Map<object, QuantizedRun>();
    const [r4, r8] = await runPipeline([a4, a8, nearest], inputs, {
      onQuantized: (q) => void runs.set(q.config, q),
    });
    const calibrated = new Map(runs.get(nearest)!.activations.map((a) => [a.point.tensor, a.qparams.scale[0]]));
    for (const [cfg, result] of [
      [a4, r4],
      [a8, r8],
    ] as const) {
      const evaluated = new Map(runs.get(cfg)!.activations.map((a) => [a.point.tensor, a.qparams.scale[0]]));
      const learned = (result.ptq?.units ?? []).flatMap((u) => u.scales);
      expect(learned.length, `A${cfg.aBits}: step sizes learned`).toBeGreaterThan(0);
      for (const s of learned) {
        expect(evaluated.get(s.tensor), `A${cfg.aBits} ${s.tensor}`).toBe(Math.fround(s.after));
        if (cfg === a4) expect(s.before).toBeCloseTo(calibrated.get(s.tensor)!, 6);
      }
      // each trained unit times its steps (12 steps: 11 intervals between them)
      for (const u of (result.ptq?.units ?? []).filter((x) => !x.skipped))
        expect(u.stepSeconds, `A${cfg.aBits} ${u.name}`).toBeGreaterThan(0);
      // at least one step size moved, so the check above tells learned from calibrated
      expect(learned.some((s) => Math.fround(s.after) !== Math.fround(s.before))).toBe(true);
    }
    // A8's units start from 8-bit step sizes where A4's start from 4-bit ones (the input and
    // the classifier's input stay 8-bit in both): a reconstruction shared with A4 would not
    const before = (r: typeof r4) => r.ptq!.units!.flatMap((u) => u.scales.map((x) => [x.tensor, x.before]));
    expect(before(r8)).not.toEqual(before(r4));
  });
});
