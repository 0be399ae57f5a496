/**
 * `npx tsx scripts/bench-hist-sampling.ts [rounds]`: single-pass histogram calibration of
 * MobileNet-V2 (../shared/data, 64 images, wasm, 2 threads) with its samples taken in the
 * graph (what the CPU engines run) against the same calibration fetching whole activations
 * and sampling them in JS (what a WebGPU engine runs; here wasm under a WebGPU kind), each
 * over one FP32 pass of the same round, the three measured back to back in every round.
 * Prints each round and the medians of the rounds' ratios.
 */
import { TORCHVISION_SPEC } from '../src/lib/data/preprocess.ts';
import { createNodeEngine } from '../src/lib/engine/node.ts';
import type { Engine } from '../src/lib/engine/types.ts';
import { batches } from '../src/lib/experiment/batches.ts';
import { collectActivationStats, DEFAULT_BINS } from '../src/lib/experiment/calibrate.ts';
import { DEFAULT_TUNING } from '../src/lib/experiment/inputs.ts';
import { serializeModel } from '../src/lib/onnx/model.ts';
import { mobileNetV2Sample } from './mobilenet-sample.ts';
const spec = TORCHVISION_SPEC;
const ROUNDS = Number(process.argv[2] ?? 7);
const engine = await createNodeEngine('wasm', 2);
const { graph, crops: imgs, tensors: tw } = await mobileNetV2Sample(64);
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
