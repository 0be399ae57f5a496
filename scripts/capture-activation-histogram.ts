// Writes tests/fixtures/quant/<name>.json: the calibration histogram of one real activation
// (the input of a given node of the real MobileNet-V2) for the observer unit tests.
// usage: npx tsx scripts/capture-activation-histogram.ts NODE [IMAGES] — reads ../shared/data.
import { readFile, writeFile } from 'node:fs/promises';
import { DiskCropStore, loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { prepareCrops } from '../src/lib/data/crops.ts';
import { sampleSplits } from '../src/lib/data/dataset.ts';
import { TORCHVISION_SPEC } from '../src/lib/data/preprocess.ts';
import { createNodeEngine } from '../src/lib/engine/node.ts';
import { collectActivationStats, DEFAULT_BINS } from '../src/lib/experiment/calibrate.ts';
import { parseModel } from '../src/lib/onnx/model.ts';
import { sumHistograms } from '../src/lib/quant/histogram.ts';

const node = process.argv[2] ?? 'Conv_14';
const images = Number(process.argv[3] ?? 16);
const modelPath = '../shared/data/models/mobilenetv2-7-fp32.onnx';
const graph = parseModel(new Uint8Array(await readFile(modelPath)));
const n = graph.nodes.find((x) => x.name === node);
if (!n) throw new Error(`No node ${node} in the model.`);
const tensor = n.inputs[0];
const ds = await loadImageFolder('../shared/data/imagenet-sample', '../shared/data/imagenet_class_index.json');
const split = sampleSplits(ds.items.length, 128, ds.items.length - 128, 0);
const items = split.calib.slice(0, images).map((i) => ds.items[i]);
const { crops } = await prepareCrops(items, TORCHVISION_SPEC, new DiskCropStore(), { namespace: ds.cacheNamespace });
const engine = await createNodeEngine('node');
const stats = (
  await collectActivationStats(
    engine,
    graph,
    [tensor],
    crops.filter((c): c is Uint8Array => !!c),
    TORCHVISION_SPEC,
    {
      batchSize: 8,
      histBatchSize: 4,
      histogram: true,
      moments: false,
      bins: DEFAULT_BINS,
    },
  )
).get(tensor)!;
const hist = sumHistograms(stats.batches.map((b) => b.hist!));
// sparse: [bin, count] of the non-empty bins
const bins: [number, number][] = [];
hist.forEach((c, i) => {
  if (c > 0) bins.push([i, c]);
});
const out = {
  source: `Input of ${node} (tensor ${tensor}, after ReLU6) of the real MobileNet-V2 (../shared/data/models/mobilenetv2-7-fp32.onnx, BN folded in the file), on the first ${items.length} calibration images of the seed-0 split (128 calibration images of ../shared/data/imagenet-sample), torchvision preprocessing. Written by scripts/capture-activation-histogram.ts.`,
  node,
  tensor,
  images: items.length,
  min: Math.min(...stats.batches.map((b) => b.min)),
  max: Math.max(...stats.batches.map((b) => b.max)),
  histLo: stats.histLo,
  histHi: stats.histHi,
  bins: hist.length,
  count: hist.reduce((a, b) => a + b, 0),
  nonEmpty: bins,
};
await writeFile(`tests/fixtures/quant/relu6-${node}.json`, JSON.stringify(out));
console.log(
  `wrote tests/fixtures/quant/relu6-${node}.json: ${bins.length} non-empty bins, zero-bin share ${(hist[0] / out.count).toFixed(3)}, max ${out.max}`,
);
