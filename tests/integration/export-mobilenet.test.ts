/**
 * Deployability check on the real MobileNet-V2 (issue "Deploy what you simulated"): for
 * TensorRT W8A8, Academic W8A8 with MSE activations and TensorRT with bias correction,
 * the exported model.qdq.onnx, run as deployed (onnxruntime, all optimizations), must
 * score within 0.5 points of the simulated quantized top-1 and agree with the simulation's
 * top-1 on ≥ 97% of the evaluation images. Also checks the CLI's reading of an exported
 * model. Defaults to 24 calibration / 48 evaluation images on the wasm engine; set
 * EXPORT_CALIB=128 EXPORT_EVAL=872 for the full figures (EXPORT_ENGINE=node for speed).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { DiskCropStore, loadImageFolder } from '../../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { createNodeEngine } from '../../src/lib/engine/node.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { configHash } from '../../src/lib/config/hash.ts';
import { evaluate } from '../../src/lib/experiment/evaluate.ts';
import { agreement } from '../../src/lib/quant/metrics.ts';
import { runPipeline } from '../../src/lib/pipeline/run.ts';
import type { QuantizedRun, RunInputs } from '../../src/lib/experiment/types.ts';
import { exportRun } from '../../src/lib/export/bundle.ts';
import { parseModel } from '../../src/lib/onnx/model.ts';
import { validateClassifier } from '../../src/lib/models/validate.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import { CLASS_INDEX, HAVE_SHARED_DATA, readModel, SAMPLE_DIR } from '../support/shared-data.ts';

const CALIB = Number(process.env.EXPORT_CALIB ?? 24);
const EVAL = Number(process.env.EXPORT_EVAL ?? 48);
const ENGINE = (process.env.EXPORT_ENGINE ?? 'wasm') as 'wasm' | 'node';

interface Check {
  label: string;
  simulated: number;
  deployed: number;
  agreement: number;
  model: Uint8Array;
}

describe.skipIf(!HAVE_SHARED_DATA)('exported MobileNet-V2 QDQ models match the simulation', () => {
  const checks: Check[] = [];
  const sweep: [string, Partial<ExperimentConfig>][] = [
    ['TensorRT W8A8', { backend: 'tensorrt' }],
    ['Academic W8A8 (MSE activations)', { backend: 'academic', aObserver: 'mse' }],
    ['TensorRT W8A8 + bias correction', { backend: 'tensorrt', biasCorrection: true }],
  ];
  let inputs: RunInputs;

  beforeAll(async () => {
    const dataset = await loadImageFolder(SAMPLE_DIR, CLASS_INDEX);
    const engine = await createNodeEngine(ENGINE, 2);
    inputs = {
      engine,
      modelBytes: readModel(),
      model: { id: 'mobilenet-v2', label: 'MobileNet-V2', preprocess: TORCHVISION_SPEC, classes: 1000 },
      dataset,
      cropStore: new DiskCropStore(),
    };
    const configs = sweep.map(([, s]) =>
      resolveConfig({ ...s, model: 'mobilenet-v2', calib: CALIB, eval: EVAL, seed: 0 }),
    );
    const onQuantized = async (run: QuantizedRun) => {
      const i = configs.indexOf(run.config);
      const bundle = exportRun(run, await configHash(run.config));
      const model = bundle.files['model.qdq.onnx'];
      const { crops, labels, preds, spec } = run.evaluation;
      const session = await engine.createSession(model);
      const o = await evaluate(session, crops, labels, spec, { batchSize: 32 });
      await session.release();
      const simulated = preds.reduce((n, p, k) => n + (p === labels[k] ? 1 : 0), 0) / labels.length;
      checks[i] = {
        label: sweep[i][0],
        simulated,
        deployed: o.top1Hits / o.n,
        agreement: agreement(o.preds, preds),
        model,
      };
    };
    await runPipeline(configs, inputs, { onQuantized });
    for (const c of checks) {
      console.log(
        `${c.label} (${CALIB} calib / ${EVAL} eval, ${ENGINE}): simulated top-1 ${(100 * c.simulated).toFixed(2)}, exported ${(100 * c.deployed).toFixed(2)}, agreement ${(100 * c.agreement).toFixed(2)}%`,
      );
    }
  }, 3_600_000);

  for (const [label] of sweep) {
    it(`${label}: exported top-1 within 0.5 points of the simulation, agreement ≥ 97%`, () => {
      const c = checks.find((x) => x.label === label)!;
      expect(Math.abs(c.deployed - c.simulated)).toBeLessThanOrEqual(0.005);
      expect(c.agreement).toBeGreaterThanOrEqual(0.97);
    });
  }

  it('an exported model is a valid classifier for the pipeline, with integer weights only', () => {
    const g = parseModel(checks[0].model);
    expect(validateClassifier(g, { labels: 1000 }).classes).toBe(1000);
    const weights = [...g.initializers.values()].filter((t) => t.dims.length === 4);
    expect(weights.length).toBeGreaterThan(50);
    expect(weights.every((t) => t.dtype === 'int8')).toBe(true);
    expect(g.opset).toBeGreaterThanOrEqual(13);
  });
});
