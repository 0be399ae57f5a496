/**
 * `npx tsx scripts/bench-hist-sampling.ts [rounds]`: single-pass histogram calibration of
 * MobileNet-V2 (../shared/data, 64 images, wasm, 2 threads) with its samples taken in the
 * graph (what the CPU engines run) against the same calibration fetching whole activations
 * and sampling them in JS (what a WebGPU engine runs; here wasm under a WebGPU kind), each
 * over one FP32 pass of the same round, the three measured back to back in every round.
 * Prints each round and the medians of the rounds' ratios.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { prepareCrops } from '../src/lib/data/crops.ts';
import { DiskCropStore, loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../src/lib/data/preprocess.ts';
import { createNodeEngine } from '../src/lib/engine/node.ts';
import type { Engine } from '../src/lib/engine/types.ts';
import { batches } from '../src/lib/experiment/batches.ts';
import { collectActivationStats, DEFAULT_BINS } from '../src/lib/experiment/calibrate.ts';
import { DEFAULT_TUNING } from '../src/lib/experiment/inputs.ts';
import { foldBatchNorm } from '../src/lib/onnx/fold-bn.ts';
import { parseModel, serializeModel } from '../src/lib/onnx/model.ts';
import { findQuantPoints } from '../src/lib/onnx/placement.ts';
const spec = TORCHVISION_SPEC;
const SHARED = process.env.QP_SHARED_DATA ?? join(import.meta.dirname, '../../shared/data');
const ROUNDS = Number(process.argv[2] ?? 7);
const engine = await createNodeEngine('wasm', 2);
const ds = await loadImageFolder(join(SHARED, 'imagenet-sample'));
const items = ds.items.slice(0, 64);
const { crops } = await prepareCrops(items, spec, new DiskCropStore(), {});
const imgs = crops.filter((c): c is Uint8Array => !!c);
const graph = foldBatchNorm(
  parseModel(new Uint8Array(readFileSync(join(SHARED, 'models/mobilenetv2-7-fp32.onnx')))),
).graph;
const points = findQuantPoints(graph, {
  conv: true,
  gemm: true,
  add: true,
  pool: true,
  concat: true,
  modelInput: true,
});
const tw = points.activations.map((p) => p.tensor);
const opts = {
  batchSize: 32,
  histBatchSize: DEFAULT_TUNING.histBatch,
  bins: DEFAULT_BINS,
  moments: false,
  histogram: true,
};
const whole: Engine = {
  kind: 'webgpu',
  description: 'wasm under a WebGPU kind',
  createSession: (m, o) => engine.createSession(m, o),
};
const fp = await engine.createSession(serializeModel(graph));
const tensors = [...batches(imgs, spec, 32)];
const t = { raw: [] as number[], sampled: [] as number[], whole: [] as number[] };
const time = async (f: () => Promise<unknown>) => {
  const s = performance.now();
  await f();
  return (performance.now() - s) / 1000;
};
await collectActivationStats(engine, graph, tw, imgs, spec, opts);
for (let r = 0; r < ROUNDS; r++) {
  t.raw.push(
    await time(async () => {
      for (const b of tensors) await fp.run({ [fp.inputNames[0]]: b.tensor });
    }),
  );
  t.sampled.push(await time(() => collectActivationStats(engine, graph, tw, imgs, spec, opts)));
  t.whole.push(await time(() => collectActivationStats(whole, graph, tw, imgs, spec, opts)));
  console.log(
    `round ${r}: raw ${t.raw[r].toFixed(2)} sampled ${t.sampled[r].toFixed(2)} (${(t.sampled[r] / t.raw[r]).toFixed(2)}×) whole ${t.whole[r].toFixed(2)} (${(t.whole[r] / t.raw[r]).toFixed(2)}×)`,
  );
}
const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
console.log(
  `median of ${ROUNDS} rounds' ratios: sampled ${med(t.sampled.map((x, i) => x / t.raw[i])).toFixed(2)}×, whole ${med(t.whole.map((x, i) => x / t.raw[i])).toFixed(2)}×; median sampled/whole ${med(t.sampled.map((x, i) => x / t.whole[i])).toFixed(3)}`,
);
