/**
 * Where the time of histogram calibration goes (`npx tsx scripts/profile-calibration.ts`):
 * the single-pass histogram form (experiment/calibrate.ts) taken apart into its pieces, each
 * timed as CPU time of this process on a one-thread engine (less disturbed by other work on a
 * shared machine than wall time) and divided by one FP32 pass of the same round:
 *   fp32 at batch 8        the forward pass at the histogram sub-batch size
 *   min/max in the graph   the statistics graph (ReduceMin, ReduceMax per tensor), batch 32
 *   fetch activations      the forward pass with every quantized tensor fetched, batch 8
 *   + min/max              the histogram graph as run: fetched tensors and the reductions
 *   + binning              the same plus the sampled binning into fine histograms
 * Rounds are interleaved; the median of per-round ratios is printed with the range.
 * Options (`--help`; scripts/cli-specs.ts): --model FILE --data DIR [--images 64] [--rounds 3] [--threads 1]
 */
import { readFileSync } from 'node:fs';
import { prepareCrops } from '../src/lib/data/crops.ts';
import { DiskCropStore, loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC as spec } from '../src/lib/data/preprocess.ts';
import { createNodeEngine } from '../src/lib/engine/node.ts';
import { batches } from '../src/lib/experiment/batches.ts';
import { DEFAULT_BINS, SAMPLE_STRIDE } from '../src/lib/experiment/calibrate.ts';
import { table } from '../src/lib/experiment/report.ts';
import { buildStatsGraph } from '../src/lib/onnx/calibration.ts';
import { addOutputs } from '../src/lib/onnx/fake-quant.ts';
import { foldBatchNorm } from '../src/lib/onnx/fold-bn.ts';
import { parseModel, serializeModel } from '../src/lib/onnx/model.ts';
import { findQuantPoints, ALL_PLACEMENT } from '../src/lib/onnx/placement.ts';
import { accumulateCountsStrided } from '../src/lib/quant/histogram.ts';
import { roundRatios } from './cpu-load.ts';
import { configValue, parseCliOrExit } from '../src/cli/options.ts';
import { PROFILE_CALIBRATION_CLI } from './cli-specs.ts';

const cli = parseCliOrExit(PROFILE_CALIBRATION_CLI);
const v = {
  model: configValue(cli, 'model') as string,
  data: configValue(cli, 'dataset') as string,
  images: cli.values.images as number,
  rounds: cli.values.rounds as number,
  threads: cli.values.threads as number,
};

const graph = foldBatchNorm(parseModel(new Uint8Array(readFileSync(v.model)))).graph;
const tensors = findQuantPoints(graph, ALL_PLACEMENT).activations.map((p) => p.tensor);
const engine = await createNodeEngine('wasm', v.threads);
const dataset = await loadImageFolder(v.data);
const { crops } = await prepareCrops(dataset.items.slice(0, v.images), spec, new DiskCropStore(), {});
const imgs = crops.filter((c): c is Uint8Array => !!c);
const { graph: sg, outputs } = buildStatsGraph(graph, tensors, { moments: false, shapes: false });
const minmax = [...outputs.values()].flatMap((o) => [o.min, o.max]);
const fp = await engine.createSession(serializeModel(graph));
const stats = await engine.createSession(serializeModel(sg));
const taps = await engine.createSession(serializeModel(addOutputs(graph, tensors)));
const hist = await engine.createSession(serializeModel(addOutputs(sg, tensors)));
const b32 = [...batches(imgs, spec, 32)];
const b8 = [...batches(imgs, spec, 8)];
const counts = new Uint32Array(DEFAULT_BINS * 4);

async function cpuMs(fn: () => Promise<unknown>): Promise<number> {
  const t = process.cpuUsage();
  await fn();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
}

const parts = ['fp32 at batch 8', 'min/max in the graph', 'fetch activations', '+ min/max', '+ binning'] as const;
const samples: Record<string, number[]> = Object.fromEntries(['fp32', ...parts].map((k) => [k, []]));
for (let r = 0; r < v.rounds; r++) {
  samples['fp32'].push(
    await cpuMs(async () => {
      for (const b of b32) await fp.run({ input: b.tensor });
    }),
  );
  samples['fp32 at batch 8'].push(
    await cpuMs(async () => {
      for (const b of b8) await fp.run({ input: b.tensor });
    }),
  );
  samples['min/max in the graph'].push(
    await cpuMs(async () => {
      for (const b of b32) await stats.run({ input: b.tensor }, minmax);
    }),
  );
  samples['fetch activations'].push(
    await cpuMs(async () => {
      for (const b of b8) await taps.run({ input: b.tensor }, tensors);
    }),
  );
  samples['+ min/max'].push(
    await cpuMs(async () => {
      for (const b of b8) await hist.run({ input: b.tensor }, [...tensors, ...minmax]);
    }),
  );
  let call = 0;
  samples['+ binning'].push(
    await cpuMs(async () => {
      for (const b of b8) {
        const out = await hist.run({ input: b.tensor }, [...tensors, ...minmax]);
        for (const t of tensors) {
          const o = outputs.get(t)!;
          counts.fill(0);
          accumulateCountsStrided(
            out[t].data,
            out[o.min].data[0],
            out[o.max].data[0],
            counts,
            SAMPLE_STRIDE,
            call % SAMPLE_STRIDE,
          );
        }
        call++;
      }
    }),
  );
  console.error(
    `round ${r + 1}: ${Object.entries(samples)
      .map(([k, s]) => `${k} ${(s[r] / 1000).toFixed(2)} s`)
      .join(', ')}`,
  );
}
console.log(
  `CPU time over one FP32 pass (batch 32), ${imgs.length} images, ${v.threads} thread(s), ${v.rounds} rounds:`,
);
console.log(
  table(
    ['piece', 'ratio (median of rounds)', 'rounds'],
    parts.map((p) => {
      const q = roundRatios(samples[p], samples['fp32']);
      return [p, `${q.median.toFixed(2)}×`, `${q.min.toFixed(2)}–${q.max.toFixed(2)}`];
    }),
  ),
);
