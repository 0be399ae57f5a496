/**
 * Imported quantized models on the engine:
 * - the fixtures themselves: the QDQ form onnxruntime's quantizer writes and its QOperator
 *   conversion give the same outputs in onnxruntime-node (as do our export and its
 *   conversion, up to the int32 bias the conversion introduces);
 * - evaluation as it is equals onnxruntime running the file, every top-1 decision, on the
 *   wasm engine against onnxruntime-web and on the node engine against onnxruntime-node;
 * - re-simulating our own export on the parent, as a run of the pipeline with the scheme
 *   hook, gives the simulation's top-1 back (within 0.1 point, every decision), with the
 *   imported activation ranges and with activations calibrated anew by the preset's
 *   observer; the comparison with the parent runs;
 * - the accuracy-aware search meets a one-point budget on MobileNet-V2 W4A8 (its own image
 *   counts: a budget below one validation image would mean "no image may change").
 * MobileNet-V2 parts use small image counts (IMPORTED_CALIB / IMPORTED_EVAL) and skip
 * without ../shared/data.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import { configHash } from '../../src/lib/config/hash.ts';
import { DiskCropStore, loadImageFolder } from '../../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { createNodeEngine } from '../../src/lib/engine/node.ts';
import type { Engine } from '../../src/lib/engine/types.ts';
import { batches } from '../../src/lib/experiment/batches.ts';
import { loadSplitCrops } from '../../src/lib/experiment/inputs.ts';
import type { QuantizedRun, RunInputs } from '../../src/lib/experiment/types.ts';
import { buildQdq, exportRun, toDeployable } from '../../src/lib/export/index.ts';
import { compareWithParent } from '../../src/lib/imported/compare.ts';
import { evaluateAsIs } from '../../src/lib/imported/evaluate.ts';
import { matchGraphs } from '../../src/lib/imported/match.ts';
import { readImported } from '../../src/lib/imported/read.ts';
import { resimulationConfig, schemeOnParent } from '../../src/lib/imported/resimulate.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { parseModel, serializeModel } from '../../src/lib/onnx/model.ts';
import { runPipeline } from '../../src/lib/pipeline/run.ts';
import { agreement } from '../../src/lib/quant/metrics.ts';
import { accuracyControl, keepAt, sizeOf } from '../../src/lib/search/accuracy-control.ts';
import { pipelineEvaluator } from '../../src/lib/search/evaluator.ts';
import { engineFreeRun, minMaxRanges, ortStyleQdq, qdqToQOperator, smallRanges } from '../support/imported-fixtures.ts';
import { mulberry32, randn, smallCnn } from '../support/onnx-helpers.ts';
import { argmaxRows } from '../support/pipeline-helpers.ts';
import { CLASS_INDEX, HAVE_SHARED_DATA, readModel, SAMPLE_DIR } from '../support/shared-data.ts';

const CALIB = Number(process.env.IMPORTED_CALIB ?? 16);
const EVAL = Number(process.env.IMPORTED_EVAL ?? 48);

type Ort = typeof ortNode;
/** Outputs of a session made directly by an onnxruntime package with its default options. */
async function direct(ort: Ort, bytes: Uint8Array, data: Float32Array, dims: number[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes);
  try {
    const r = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', data, dims) });
    return r[s.outputNames[0]].data as Float32Array;
  } finally {
    await s.release();
  }
}

describe('fixtures: QDQ and QOperator forms run alike in onnxruntime-node', () => {
  const folded = foldBatchNorm(smallCnn()).graph;
  const x = randn(mulberry32(3), 8 * 3 * 8 * 8, 1.2);
  const dims = [8, 3, 8, 8];

  it('the onnxruntime-style QDQ model and its QOperator conversion: identical outputs', async () => {
    const qdq = ortStyleQdq(folded, smallRanges());
    const a = await direct(ortNode, serializeModel(qdq), x, dims);
    const b = await direct(ortNode, serializeModel(qdqToQOperator(qdq)), x, dims);
    expect(Array.from(b)).toEqual(Array.from(a));
  });

  it('our export and its QOperator conversion: the same top-1, outputs within a few quantization steps', async () => {
    const run = engineFreeRun(resolveConfig({ backend: 'academic' }));
    const qdq = buildQdq(toDeployable(run)).graph;
    const qop = qdqToQOperator(qdq);
    expect(qop.nodes.some((n) => n.opType === 'QLinearConv')).toBe(true);
    const a = await direct(ortNode, serializeModel(qdq), x, dims);
    const b = await direct(ortNode, serializeModel(qop), x, dims);
    expect(Array.from(argmaxRows(b, 5))).toEqual(Array.from(argmaxRows(a, 5)));
    let d = 0;
    for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
    expect(d).toBeLessThan(0.05 * Math.max(...Array.from(a, Math.abs)));
  });
});

describe.skipIf(!HAVE_SHARED_DATA)('imported MobileNet-V2 models', () => {
  let inputs: RunInputs;
  let set: { crops: Uint8Array[]; labels: number[]; spec: typeof TORCHVISION_SPEC };
  const parent = foldBatchNorm(parseModel(readModel())).graph;
  const models: { label: string; bytes: Uint8Array; run?: QuantizedRun }[] = [];
  const base = resolveConfig({ backend: 'tensorrt', model: 'mobilenet-v2', calib: CALIB, eval: EVAL, seed: 0 });

  beforeAll(async () => {
    const dataset = await loadImageFolder(SAMPLE_DIR, CLASS_INDEX);
    const engine = await createNodeEngine('wasm', 2);
    inputs = {
      engine,
      modelBytes: readModel(),
      model: { id: 'mobilenet-v2', label: 'MobileNet-V2', preprocess: TORCHVISION_SPEC, classes: 1000 },
      dataset,
      cropStore: new DiskCropStore(),
    };
    const split = await loadSplitCrops(inputs, base);
    set = { crops: split.evalCrops, labels: split.evalLabels, spec: TORCHVISION_SPEC };
    await runPipeline([base], inputs, {
      onQuantized: async (run) => {
        const bundle = exportRun(run, await configHash(run.config));
        models.push({ label: 'own TensorRT export', bytes: bundle.files['model.qdq.onnx'], run });
      },
    });
    const ranges = await minMaxRanges(engine, parent, split.calibCrops, TORCHVISION_SPEC);
    const ort = ortStyleQdq(parent, ranges);
    models.push({ label: 'onnxruntime-style QDQ', bytes: serializeModel(ort) });
    models.push({ label: 'QOperator', bytes: serializeModel(qdqToQOperator(ort)) });
  }, 1_200_000);

  async function decisions(ort: Ort, bytes: Uint8Array): Promise<Int32Array> {
    const s = await ort.InferenceSession.create(bytes);
    const out: number[] = [];
    try {
      for (const b of batches(set.crops, set.spec, 16)) {
        const r = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', b.tensor.data, b.tensor.dims) });
        out.push(...argmaxRows(r[s.outputNames[0]].data as Float32Array, 1000));
      }
    } finally {
      await s.release();
    }
    return Int32Array.from(out);
  }

  for (const [kind, ort] of [
    ['wasm', ortWeb as unknown as Ort],
    ['node', ortNode],
  ] as const) {
    it(`as it is on the ${kind} engine: every top-1 decision equals onnxruntime-${kind === 'wasm' ? 'web' : 'node'} running the file`, async () => {
      const engine: Engine = await createNodeEngine(kind, 2);
      for (const m of models) {
        const asIs = await evaluateAsIs(engine, m.bytes, set);
        expect(Array.from(asIs.preds), m.label).toEqual(Array.from(await decisions(ort, m.bytes)));
      }
    });
  }

  it('re-simulating our own export through the pipeline gives the simulation back, decision for decision', async () => {
    const m = models[0];
    const imported = readImported(parseModel(m.bytes));
    const match = matchGraphs(imported.skeleton, parent);
    expect(match.layers).toHaveLength(53);
    expect([match.unmatchedImported, match.unmatchedParent]).toEqual([[], []]);
    const scheme = schemeOnParent(imported, parent, match, 'cd'.repeat(32));
    expect(scheme.unmatched.activations).toEqual([]);
    const asImported = resimulationConfig(scheme, base);
    // one thing changed: the activations calibrated anew with the preset's observer
    const recalibrated = { ...asImported, aObserver: base.aObserver };
    const preds = new Map<ExperimentConfig, Int32Array>();
    const results = await runPipeline([asImported, recalibrated], inputs, {
      hooks: { scheme },
      onQuantized: (q) => void preds.set(q.config, q.evaluation.preds),
    });
    const simulated = m.run!.evaluation.preds;
    const hits = simulated.reduce((n, p, i) => n + (p === set.labels[i] ? 1 : 0), 0);
    for (const [k, r] of results.entries()) {
      expect(Math.abs(r.quant.top1 - hits / simulated.length), `config ${k}`).toBeLessThanOrEqual(0.001);
      expect(agreement(preds.get(r.config)!, simulated), `config ${k}`).toBe(1);
    }
    // without the scheme the pipeline refuses the config rather than run something else
    await expect(runPipeline([asImported], inputs)).rejects.toThrow(/not loaded/);
  });

  it('compares an onnxruntime-style model with its parent layer by layer', async () => {
    const bytes = models[1].bytes;
    const imported = readImported(parseModel(bytes));
    const match = matchGraphs(imported.skeleton, parent);
    const scheme = schemeOnParent(imported, parent, match, 'ef'.repeat(32));
    const c = await compareWithParent({
      engine: inputs.engine,
      fileBytes: bytes,
      imported,
      match,
      scheme,
      config: resimulationConfig(scheme, base),
      spec: TORCHVISION_SPEC,
      crops: set.crops.slice(0, 8),
    });
    expect(c.layers).toHaveLength(53);
    const acc = c.layers.map((l) => l.fileAccumulated?.sqnrDb ?? NaN);
    expect(acc.filter(Number.isFinite).length).toBeGreaterThan(45);
    // error accumulates: the last layers are noisier than the first
    expect(acc[0]).toBeGreaterThan(acc[acc.length - 2]);
    expect(c.layers.every((l) => l.simulated && Number.isFinite(l.simulated.standalone.sqnrDb))).toBe(true);
    expect(c.tapAgreement).toBeGreaterThan(0.8);
  });
});

/**
 * The search's CI case, on its own image counts: layers ranked on 32 images, the budget
 * checked on 200 (one image is half a point, so a one-point budget lets two images change),
 * on onnxruntime-node. Academic W4A8, since its 8-bit activations alone stay within a point
 * of FP32 (TensorRT's min/max activations drop about three points at W8A8, so no choice of
 * weight bits meets one point). The pruning pass is left out here (one validation per kept
 * layer); the CLI runs it.
 */
describe.skipIf(!HAVE_SHARED_DATA)('accuracy-aware search on MobileNet-V2', () => {
  it('--max-drop 1 on W4A8 meets its budget', async () => {
    const dataset = await loadImageFolder(SAMPLE_DIR, CLASS_INDEX);
    const inputs: RunInputs = {
      engine: await createNodeEngine('node', 2),
      modelBytes: readModel(),
      model: { id: 'mobilenet-v2', label: 'MobileNet-V2', preprocess: TORCHVISION_SPEC, classes: 1000 },
      dataset,
      cropStore: new DiskCropStore(),
    };
    const cfg = resolveConfig({ backend: 'academic', model: 'mobilenet-v2', wBits: 4, calib: 32, eval: 200, seed: 0 });
    const t0 = performance.now();
    const ev = await pipelineEvaluator(inputs, cfg, { rankImages: 32 });
    const r = await accuracyControl({
      base: cfg,
      layers: ev.layers,
      reference: ev.reference,
      maxDrop: 0.01,
      evaluate: ev.evaluate,
      prune: false,
    });
    const all8 = sizeOf(
      ev.layers,
      keepAt(
        cfg,
        ev.layers.map((l) => l.layer),
        8,
      ),
    );
    console.log(
      `max-drop 1, Academic W4A8, 32/200 images, rank 32: kept ${r.kept.length} of ${ev.layers.length}, top-1 ${(100 * r.top1).toFixed(1)} vs FP32 ${(100 * ev.reference.validate.top1).toFixed(1)} (all at 4 bits ${(100 * r.steps[0].top1).toFixed(1)}), ${(r.sizeBits / 8 / 2 ** 20).toFixed(3)} MiB (4 bits ${(r.baseSizeBits / 8 / 2 ** 20).toFixed(3)}, 8 bits ${(all8 / 8 / 2 ** 20).toFixed(3)}); ${r.evaluations} evaluations, ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    );
    expect(r.met).toBe(true);
    expect(r.drop).toBeLessThanOrEqual(0.01);
    const again = await ev.evaluate(keepAt(cfg, r.kept, r.highBits), 'validate');
    expect(again.top1).toBe(r.top1);
    expect(r.sizeBits).toBeLessThan(all8);
  }, 900_000); // about 3 min on an idle 2-core machine (60 evaluations); the limit allows for a loaded one
});
