/**
 * The deployable export carries the activation step sizes a reconstruction learned, not the
 * calibrated ones: a tiny-model QDrop run and an AdaRound run with learned ranges, each
 * exported as the app and the CLI do (export/bundle.ts exportRun on the pipeline's
 * onQuantized payload). model.qdq.onnx's activation scales must equal the learned steps the
 * stored result records (result.ptq, read per point by experiment/learned-steps.ts), and
 * onnxruntime running the file as written must compute the simulation's logits and
 * decisions; a file with the calibrated steps put back must not (so the check can fail).
 * The model has a ReLU6 (Clip) before a 4-bit activation, the pattern onnxruntime 1.30 loads
 * only at optimization level basic (export/qdq.ts CLIP_INT4_NOTE).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { initJpegDecoder } from '../../src/lib/data/decode.ts';
import { createNodeNativeEngine } from '../../src/lib/engine/node.ts';
import type { Engine } from '../../src/lib/engine/types.ts';
import { batches } from '../../src/lib/experiment/batches.ts';
import { learnedSteps, stepMoved } from '../../src/lib/experiment/learned-steps.ts';
import type { ExperimentResult, QuantizedRun, RunInputs } from '../../src/lib/experiment/types.ts';
import { exportRun } from '../../src/lib/export/bundle.ts';
import { CLIP_INT4_NOTE } from '../../src/lib/export/qdq.ts';
import { verifyExport } from '../../src/lib/export/verify.ts';
import { type Graph } from '../../src/lib/onnx/ir.ts';
import { parseModel, serializeModel } from '../../src/lib/onnx/model.ts';
import { QDQ_SESSION_CONFIG } from '../../src/lib/onnx/fq-qdq.ts';
import { runPipeline } from '../../src/lib/pipeline/run.ts';
import { smallCnn } from '../support/onnx-helpers.ts';
import { memoryDataset, syntheticImages } from '../support/pipeline-helpers.ts';

const CLASSES = 5;

/** Activation tensor → the scale its QuantizeLinear reads (through a narrow range's Clip). */
function qdqScales(g: Graph): Map<string, number> {
  const producer = new Map(g.nodes.map((n) => [n.outputs[0], n] as const));
  const out = new Map<string, number>();
  for (const n of g.nodes.filter((m) => m.opType === 'QuantizeLinear')) {
    const p = producer.get(n.inputs[0]);
    const tensor = p?.opType === 'Clip' && p.name.endsWith('_Clip') ? p.inputs[0] : n.inputs[0];
    out.set(tensor, (g.initializers.get(n.inputs[1])!.data as Float32Array)[0]);
  }
  return out;
}

/** Logits of `model` on the run's evaluation crops (one batch); a QDQ file as written, at level basic. */
async function logits(engine: Engine, run: QuantizedRun, model: Uint8Array, qdq: boolean): Promise<Float32Array> {
  const { crops, spec } = run.evaluation;
  const s = await engine.createSession(model, qdq ? { config: QDQ_SESSION_CONFIG, optimization: 'basic' } : {});
  try {
    const b = batches(crops, spec, crops.length).next().value!;
    const o = await s.run({ [s.inputNames[0]]: b.tensor });
    return Object.values(o)[0].data;
  } finally {
    await s.release();
  }
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('the export of a run with learned activation step sizes', () => {
  let engine: Engine;
  const runs = new Map<ExperimentConfig, QuantizedRun>();
  const results = new Map<ExperimentConfig, ExperimentResult>();
  const common = { backend: 'academic', model: 'test:export-learned', calib: 4, eval: 8, seed: 2 } as const;
  const qdrop = resolveConfig({ ...common, wBits: 4, aBits: 4, ptq: 'qdrop', ptqIters: 12 });
  const adaround = resolveConfig({
    ...common,
    wBits: 4,
    aBits: 4,
    ptq: 'adaround',
    ptqActRanges: 'learned',
    ptqIters: 12,
  });

  beforeAll(async () => {
    engine = await createNodeNativeEngine(1);
    await initJpegDecoder();
    const inputs: RunInputs = {
      engine,
      modelBytes: serializeModel(smallCnn({ seed: 9, relu6Clip: true })),
      model: { id: common.model, label: 'tiny', preprocess: TORCHVISION_SPEC, classes: CLASSES },
      dataset: memoryDataset(syntheticImages(12, CLASSES, 4), CLASSES, 'export-learned'),
    };
    const configs = [qdrop, adaround];
    const out = await runPipeline(configs, inputs, { onQuantized: (q) => void runs.set(q.config, q) });
    configs.forEach((c, i) => results.set(c, out[i]));
  }, 120_000);

  for (const [name, cfg] of [
    ['QDrop', qdrop],
    ['AdaRound with learned ranges', adaround],
  ] as const) {
    it(`${name}: the QDQ file's activation scales are the learned steps the result records`, async () => {
      const run = runs.get(cfg)!;
      const result = results.get(cfg)!;
      const steps = learnedSteps(result.ptq);
      expect(steps.length, 'step sizes learned').toBeGreaterThan(0);
      expect(steps.some(stepMoved), 'at least one step moved, so learned and calibrated differ').toBe(true);
      // the stored result survives a JSON round trip (the CLI record) with the same steps
      expect(learnedSteps((JSON.parse(JSON.stringify(result)) as ExperimentResult).ptq)).toEqual(steps);

      const bundle = exportRun(run, result.configHash);
      const file = bundle.files['model.qdq.onnx'];
      expect(file, bundle.qdqError?.message).toBeDefined();
      const scales = qdqScales(parseModel(file));
      // every simulated activation point is exported with the simulated step
      expect([...scales.keys()].sort()).toEqual(run.activations.map((a) => a.point.tensor).sort());
      for (const a of run.activations) expect(scales.get(a.point.tensor), a.point.tensor).toBe(a.qparams.scale[0]);
      // and the learned points with the learned step, not the calibrated one
      for (const s of steps) {
        expect(scales.get(s.tensor), s.tensor).toBe(Math.fround(s.learned));
        if (stepMoved(s)) expect(scales.get(s.tensor), s.tensor).not.toBe(Math.fround(s.calibrated));
      }
      // ranges.json: the learned scale, with calibration's beside it
      const ranges = JSON.parse(new TextDecoder().decode(bundle.files['ranges.json'])) as {
        activations: Record<string, { scale: number; scale_learned?: boolean; calibrated: { scale?: number } }>;
      };
      for (const s of steps) {
        const r = ranges.activations[s.tensor];
        expect(r.scale, s.tensor).toBe(Math.fround(s.learned));
        expect(r.scale_learned, s.tensor).toBe(true);
        expect(r.calibrated.scale, s.tensor).toBe(s.calibrated);
      }
      const learnedSet = new Set(steps.map((s) => s.tensor));
      for (const [t, r] of Object.entries(ranges.activations))
        if (!learnedSet.has(t)) expect(r.scale_learned, t).toBeUndefined();
      expect(bundle.notes.some((n) => n.includes(`${steps.length} activation scale(s) are the step sizes`))).toBe(true);
    });

    it(`${name}: onnxruntime on the file as written computes the simulation's logits and decisions`, async () => {
      const run = runs.get(cfg)!;
      const bundle = exportRun(run, results.get(cfg)!.configHash);
      const file = bundle.files['model.qdq.onnx'];
      // 4-bit activations read from the ReLU6 Clip: onnxruntime 1.30 refuses the file at its
      // default level (CLIP_INT4_NOTE); the bundle says so and names the level that loads it
      expect(bundle.qdqOptimization).toBe('basic');
      expect(bundle.notes).toContain(CLIP_INT4_NOTE);
      await expect(engine.createSession(file)).rejects.toThrow(/y_zero_point/);
      const check = await verifyExport(engine, run, file, { fusions: false, optimization: bundle.qdqOptimization });
      expect(check.agreement).toBe(1);
      expect(check.deployedTop1).toBe(check.simulatedTop1);
      const simulated = await logits(engine, run, serializeModel(run.evaluated), false);
      const deployed = await logits(engine, run, file, true);
      const scale = simulated.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(maxAbsDiff(deployed, simulated)).toBe(0);

      // control: the same run exported with the calibrated steps put back computes other logits
      const steps = new Map(learnedSteps(results.get(cfg)!.ptq).map((s) => [s.tensor, s.calibrated]));
      const calibratedRun: QuantizedRun = {
        ...run,
        activations: run.activations.map((a) =>
          steps.has(a.point.tensor)
            ? { ...a, qparams: { ...a.qparams, scale: Float32Array.of(steps.get(a.point.tensor)!) } }
            : a,
        ),
      };
      const other = await logits(engine, run, exportRun(calibratedRun, 'control').files['model.qdq.onnx'], true);
      expect(maxAbsDiff(other, simulated)).toBeGreaterThan(1e-3 * scale);
    });
  }
});
