/**
 * `npm run bench:perf`: speed ratios measured side by side in one run on the same
 * images and the same engine (targets from the core engine issue):
 *   product evaluation / raw session.run on pre-made tensors   ≤ 1.15×
 *   MinMax calibration pass / one FP32 pass                     ≤ 2×
 *   histogram-observer calibration / one FP32 pass              ≤ 4×
 *   fake-quant evaluation / FP32 evaluation                     ≤ 1.5×
 * Ratios, not absolute times, are the claim: these machines are noisy.
 * Options: --model FILE --data DIR [--images N] [--engine wasm|node] [--threads N]
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { prepareCrops } from '../src/lib/data/crops.ts';
import { DiskCropStore, loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../src/lib/data/preprocess.ts';
import { createNodeEngine } from '../src/lib/engine/node.ts';
import type { Engine } from '../src/lib/engine/types.ts';
import { batches } from '../src/lib/experiment/batches.ts';
import { collectActivationStats, DEFAULT_BINS } from '../src/lib/experiment/calibrate.ts';
import { resolveConfig } from '../src/lib/experiment/config.ts';
import { evaluate } from '../src/lib/experiment/evaluate.ts';
import { quantizeActivations, quantizeWeights } from '../src/lib/experiment/quantize.ts';
import { table } from '../src/lib/experiment/report.ts';
import { insertFakeQuant } from '../src/lib/onnx/fake-quant.ts';
import { foldBatchNorm } from '../src/lib/onnx/fold-bn.ts';
import { parseModel, serializeModel } from '../src/lib/onnx/model.ts';
import { findQuantPoints } from '../src/lib/onnx/placement.ts';

const shared = resolve(import.meta.dirname, '../../shared/data');
const { values: v } = parseArgs({
  options: {
    model: { type: 'string', default: resolve(shared, 'models/mobilenetv2-7-fp32.onnx') },
    data: { type: 'string', default: resolve(shared, 'imagenet-sample') },
    images: { type: 'string', default: '128' },
    engine: { type: 'string', default: 'wasm' },
    threads: { type: 'string' },
  },
});
const N = Number(v.images);
const spec = TORCHVISION_SPEC;
const B = 32;

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await fn();
  return [(performance.now() - t0) / 1000, r];
}

/** FP32 pass over pre-made float tensors: the floor the product is compared with. */
async function rawPass(engine: Engine, model: Uint8Array, tensors: ReturnType<typeof batchesOf>) {
  const s = await engine.createSession(model);
  const input = s.inputNames[0];
  await s.run({ [input]: tensors[0].tensor }); // warm-up
  const [sec] = await time(async () => {
    for (const b of tensors) await s.run({ [input]: b.tensor });
  });
  await s.release();
  return sec;
}

function batchesOf(crops: Uint8Array[]) {
  return [...batches(crops, spec, B)];
}

async function main() {
  const engine = await createNodeEngine(v.engine as 'wasm' | 'node', v.threads ? Number(v.threads) : undefined);
  const dataset = await loadImageFolder(v.data!);
  const items = dataset.items.slice(0, N);
  const { crops } = await prepareCrops(items, spec, new DiskCropStore(), {});
  const imgs = crops.filter((c): c is Uint8Array => !!c);
  const labels = items.map((i) => i.label);
  const graph = foldBatchNorm(parseModel(new Uint8Array(readFileSync(v.model!)))).graph;
  const fp32Bytes = serializeModel(graph);
  const tensors = batchesOf(imgs);
  console.error(`engine: ${engine.description}; ${imgs.length} images, batch ${B}`);

  const raw = await rawPass(engine, fp32Bytes, tensors);

  const fpSession = await engine.createSession(fp32Bytes);
  await fpSession.run({ [fpSession.inputNames[0]]: tensors[0].tensor });
  const [product] = await time(() => evaluate(fpSession, imgs, labels, spec, { batchSize: B }));
  await fpSession.release();

  const points = findQuantPoints(graph, { conv: true, gemm: true, add: true, pool: true, concat: true, modelInput: true });
  const tensorsToWatch = points.activations.map((p) => p.tensor);
  const calibOpts = { batchSize: B, histBatchSize: 8, bins: DEFAULT_BINS };
  const [minmax] = await time(() => collectActivationStats(engine, graph, tensorsToWatch, imgs, spec, { ...calibOpts, histogram: false }));
  const [hist, stats] = await time(() => collectActivationStats(engine, graph, tensorsToWatch, imgs, spec, { ...calibOpts, histogram: true }));

  const cfg = resolveConfig({ backend: 'tensorrt' });
  const weights = quantizeWeights(graph, points, cfg);
  const acts = quantizeActivations(points, stats, cfg);
  const fq = serializeModel(insertFakeQuant(graph, {
    weights: new Map(weights.map((w) => [w.point.initializer, w.values])),
    activations: new Map(acts.map((a) => [a.point.tensor, a.qparams])),
  }));
  const fqSession = await engine.createSession(fq);
  await fqSession.run({ [fqSession.inputNames[0]]: tensors[0].tensor });
  const [fqEval] = await time(() => evaluate(fqSession, imgs, labels, spec, { batchSize: B }));
  await fqSession.release();
  const fpSession2 = await engine.createSession(fp32Bytes);
  await fpSession2.run({ [fpSession2.inputNames[0]]: tensors[0].tensor });
  const [fpEval] = await time(() => evaluate(fpSession2, imgs, labels, spec, { batchSize: B }));
  await fpSession2.release();

  const row = (what: string, a: number, b: number, target: number) => [what, a.toFixed(2), b.toFixed(2), (a / b).toFixed(2) + '×', `≤ ${target}×`, a / b <= target ? 'met' : 'NOT met'];
  console.log(table(
    ['measurement', 'seconds', 'baseline s', 'ratio', 'target', ''],
    [
      row('product evaluation vs raw session.run', product, raw, 1.15),
      row('MinMax calibration vs one FP32 pass', minmax, raw, 2),
      row('histogram calibration vs one FP32 pass', hist, raw, 4),
      row(`fake-quant eval (${acts.length} act points) vs FP32 eval`, fqEval, fpEval, 1.5),
    ],
  ));
}

await main();
