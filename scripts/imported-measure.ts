/**
 * Temporary driver (until the bench CLI has --float-parent / --max-drop): measures imported
 * quantized MobileNet-V2 models against their float parent on the ImageNet sample.
 *
 * Models measured: our own QDQ export (TensorRT and Academic presets), the QDQ form
 * onnxruntime's quantizer writes (generated: uint8 asymmetric activations calibrated with
 * min/max on the calibration images, int8 per-channel weights, int32 biases), and its
 * QOperator conversion. For each: top-1 as it is (engine session) and by onnxruntime-node /
 * onnxruntime-web directly, decisions compared; the scheme re-simulated on the parent; and
 * optionally (SEARCH=1) the accuracy-aware search at --max-drop 1 on the TensorRT W4A8 preset.
 *
 *   npx tsx scripts/imported-measure.ts            (CALIB=128 EVAL=872 ENGINE=wasm by default)
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DiskCropStore, loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../src/lib/data/preprocess.ts';
import { createNodeEngine } from '../src/lib/engine/node.ts';
import { resolveConfig } from '../src/lib/config/resolve.ts';
import { configHash } from '../src/lib/config/hash.ts';
import { collectActivationStats, DEFAULT_BINS } from '../src/lib/experiment/calibrate.ts';
import { loadSplitCrops } from '../src/lib/experiment/inputs.ts';
import type { QuantizedRun, RunInputs } from '../src/lib/experiment/types.ts';
import { exportRun } from '../src/lib/export/bundle.ts';
import { runPipeline } from '../src/lib/pipeline/run.ts';
import { foldBatchNorm } from '../src/lib/onnx/fold-bn.ts';
import { parseModel, serializeModel } from '../src/lib/onnx/model.ts';
import { sha256Hex } from '../src/lib/models/identify.ts';
import { agreement } from '../src/lib/quant/metrics.ts';
import { evaluateAsIs, evaluateSimulated, resimulatedGraph } from '../src/lib/imported/evaluate.ts';
import { readImported } from '../src/lib/imported/read.ts';
import { matchGraphs } from '../src/lib/imported/match.ts';
import { resimulationConfig, schemeOnParent } from '../src/lib/imported/resimulate.ts';
import { ortStyleQdq, qdqToQOperator } from '../tests/support/imported-fixtures.ts';
import { argmaxRows } from '../tests/support/pipeline-helpers.ts';
import { batches } from '../src/lib/experiment/batches.ts';

const DATA = resolve(import.meta.dirname, '../../shared/data');
const CALIB = Number(process.env.CALIB ?? 128);
const EVAL = Number(process.env.EVAL ?? 872);
const ENGINE = (process.env.ENGINE ?? 'wasm') as 'wasm' | 'node';
const pct = (x: number) => (100 * x).toFixed(2);

const engine = await createNodeEngine(ENGINE, 2);
const dataset = await loadImageFolder(resolve(DATA, 'imagenet-sample'), resolve(DATA, 'imagenet_class_index.json'));
const modelBytes = new Uint8Array(readFileSync(resolve(DATA, 'models/mobilenetv2-7-fp32.onnx')));
const inputs: RunInputs = {
  engine,
  modelBytes,
  model: { id: 'mobilenet-v2', label: 'MobileNet-V2', preprocess: TORCHVISION_SPEC, classes: 1000 },
  dataset,
  cropStore: new DiskCropStore(),
};
const base = resolveConfig({ backend: 'tensorrt', model: 'mobilenet-v2', calib: CALIB, eval: EVAL, seed: 0 });
const { calibCrops, evalCrops, evalLabels } = await loadSplitCrops(inputs, base);
const spec = TORCHVISION_SPEC;
const set = { crops: evalCrops, labels: evalLabels, spec };
console.log(`engine ${engine.description}; ${calibCrops.length} calibration / ${evalCrops.length} evaluation images`);

const parent = foldBatchNorm(parseModel(modelBytes)).graph;
const fp32 = await evaluateAsIs(engine, serializeModel(parent), set);
console.log(`FP32 parent top-1 ${pct(fp32.top1Hits / fp32.n)}`);

/** Our own exports, with the simulated top-1 of the run they come from. */
const models: { label: string; bytes: Uint8Array; simulated?: number; simPreds?: Int32Array }[] = [];
const presets = [
  ['own export, TensorRT W8A8', resolveConfig({ ...base, backend: 'tensorrt' })],
  ['own export, Academic W8A8', resolveConfig({ ...base, backend: 'academic' })],
] as const;
await runPipeline(
  presets.map(([, c]) => c),
  inputs,
  {
    onQuantized: async (run: QuantizedRun) => {
      const i = presets.findIndex(([, c]) => c === run.config);
      const bundle = exportRun(run, await configHash(run.config));
      const { labels, preds } = run.evaluation;
      models.push({
        label: presets[i][0],
        bytes: bundle.files['model.qdq.onnx'],
        simulated: preds.reduce((n, p, k) => n + (p === labels[k] ? 1 : 0), 0) / labels.length,
        simPreds: preds,
      });
    },
  },
);

// onnxruntime-quantizer-style QDQ: min/max ranges of every tensor on the calibration images
const tensors = [...parent.inputs.map((v) => v.name), ...parent.nodes.flatMap((n) => n.outputs)];
const stats = await collectActivationStats(engine, parent, tensors, calibCrops, spec, {
  batchSize: 32,
  histBatchSize: 8,
  histogram: false,
  moments: false,
  bins: DEFAULT_BINS,
});
const ranges = new Map<string, { min: number; max: number }>();
for (const [t, s] of stats)
  ranges.set(t, { min: Math.min(...s.batches.map((b) => b.min)), max: Math.max(...s.batches.map((b) => b.max)) });
const ortQdq = ortStyleQdq(parent, ranges);
models.push({ label: 'onnxruntime-style QDQ (uint8 act, int8 pc weights)', bytes: serializeModel(ortQdq) });
models.push({ label: 'QOperator (converted from the above)', bytes: serializeModel(qdqToQOperator(ortQdq)) });

/** top-1 decisions of a direct onnxruntime session (package imported here, default options). */
async function direct(pkg: 'onnxruntime-node' | 'onnxruntime-web', bytes: Uint8Array): Promise<Int32Array> {
  const ort = (await import(pkg)) as unknown as {
    InferenceSession: {
      create(b: Uint8Array): Promise<{
        inputNames: string[];
        outputNames: string[];
        run(f: unknown): Promise<Record<string, { data: Float32Array }>>;
        release(): Promise<void>;
      }>;
    };
    Tensor: new (t: string, d: Float32Array, dims: number[]) => unknown;
  };
  const s = await ort.InferenceSession.create(bytes);
  const out: number[] = [];
  for (const b of batches(evalCrops, spec, 32)) {
    const r = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', b.tensor.data, b.tensor.dims) });
    out.push(...argmaxRows(r[s.outputNames[0]].data, 1000));
  }
  await s.release();
  return Int32Array.from(out);
}

for (const m of models) {
  const t0 = performance.now();
  const asIs = await evaluateAsIs(engine, m.bytes, set);
  const same = await direct(ENGINE === 'node' ? 'onnxruntime-node' : 'onnxruntime-web', m.bytes);
  const imported = readImported(parseModel(m.bytes));
  const match = matchGraphs(imported.skeleton, parent);
  const scheme = schemeOnParent(imported, parent, match, await sha256Hex(m.bytes));
  const cfg = resimulationConfig(scheme, base);
  const re = resimulatedGraph(scheme, cfg);
  const sim = await evaluateSimulated(engine, re.graph, set);
  console.log(
    `\n${m.label} (${imported.format}, ${imported.layers.length} layers, ${imported.activations.length} activation quantizers)`,
  );
  console.log(
    `  as it is (engine): top-1 ${pct(asIs.top1Hits / asIs.n)}; direct onnxruntime: same top-1 decision on ${pct(agreement(asIs.preds, same))}% of images`,
  );
  if (m.simulated !== undefined)
    console.log(
      `  simulated run it was exported from: top-1 ${pct(m.simulated)}; agreement with the file ${pct(agreement(asIs.preds, m.simPreds!))}%`,
    );
  console.log(
    `  matched ${match.layers.length} layers (${match.unmatchedImported.length} imported / ${match.unmatchedParent.length} parent unmatched); ${scheme.unmatched.activations.length} quantizers without a parent tensor; weight codes equal to RTN of the parent: min ${pct(Math.min(...scheme.layers.map((l) => l.codeAgreement)))}%`,
  );
  console.log(
    `  re-simulated on the parent: top-1 ${pct(sim.top1Hits / sim.n)} (Δ ${((100 * (sim.top1Hits - asIs.top1Hits)) / sim.n).toFixed(2)} points); agreement with the file ${pct(agreement(asIs.preds, sim.preds))}%; ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
}

if (process.env.SEARCH === '1') {
  const { pipelineEvaluator } = await import('../src/lib/search/evaluator.ts');
  const { accuracyControl } = await import('../src/lib/search/accuracy-control.ts');
  const cfg = resolveConfig({ ...base, backend: 'tensorrt', wBits: Number(process.env.SEARCH_WBITS ?? 4) });
  const t0 = performance.now();
  const ev = await pipelineEvaluator(inputs, cfg, { rankImages: Number(process.env.RANK ?? 128) });
  const r = await accuracyControl({
    base: cfg,
    layers: ev.layers,
    reference: ev.reference,
    maxDrop: 0.01,
    evaluate: ev.evaluate,
    onProgress: (m, d, t) => d === t && console.error(m),
  });
  const mib = (b: number) => (b / 8 / 2 ** 20).toFixed(3);
  console.log(
    `\nmax-drop 1 on TensorRT W${cfg.wBits}A${cfg.aBits} (FP32 ${pct(ev.reference.validate.top1)}; all layers at ${cfg.wBits} bits: top-1 ${pct(r.steps[0].top1)}, ${mib(r.baseSizeBits)} MiB):`,
  );
  console.log(
    `  ${r.met ? 'met' : 'NOT met'}: ${r.kept.length} layer(s) kept at ${r.highBits} bits (${r.kept.join(', ')}), top-1 ${pct(r.top1)} (drop ${(100 * r.drop).toFixed(2)} points), weights ${mib(r.sizeBits)} MiB; ${r.evaluations} evaluations, ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  console.log(
    `  ranking (top 10): ${r.ranking
      .slice(0, 10)
      .map((l) => `${l.layer} +${(100 * l.gain).toFixed(1)}`)
      .join(', ')}`,
  );
  console.log(`  path: ${r.steps.map((s) => `${s.kept.length}:${pct(s.top1)}`).join(' ')}`);
}
