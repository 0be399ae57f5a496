/**
 * `npx tsx scripts/calib-compare.ts [--images N] [--stride N]`: how far the single-pass,
 * sampled histogram calibration moves the ranges that histogram observers choose, against
 * the exact two-pass form, on the real MobileNet-V2 (every activation quantization point).
 * Prints, per observer, the median and largest change of the range's width (relative) and
 * of the range's ends (in bins of the exact histogram).
 */
import { TORCHVISION_SPEC } from '../src/lib/data/preprocess.ts';
import { createNodeEngine } from '../src/lib/engine/node.ts';
import { collectActivationStats, DEFAULT_BINS } from '../src/lib/experiment/calibrate.ts';
import { observeActivation } from '../src/lib/quant/observers.ts';
import { parseCliOrExit } from '../src/cli/options.ts';
import { CALIB_COMPARE_CLI } from './cli-specs.ts';
import { mobileNetV2Sample } from './mobilenet-sample.ts';

const { values: v } = parseCliOrExit(CALIB_COMPARE_CLI);
const engine = await createNodeEngine(v.engine as 'wasm' | 'node');
const { graph, crops: imgs, tensors } = await mobileNetV2Sample(v.images as number);
const base = { batchSize: 32, histBatchSize: 4, bins: DEFAULT_BINS, moments: false, histogram: true };
const exact = await collectActivationStats(engine, graph, tensors, imgs, TORCHVISION_SPEC, {
  ...base,
  histogramMode: 'exact',
});
const fast = await collectActivationStats(engine, graph, tensors, imgs, TORCHVISION_SPEC, {
  ...base,
  sampleStride: v.stride as number,
});
const aSpec = {
  bits: 8,
  signed: true,
  symmetric: true,
  narrowRange: false,
  granularity: 'per-tensor' as const,
  axis: 1,
  powerOfTwo: false,
};
for (const obs of ['mse', 'ema-mse', 'percentile', 'ema-quantile', 'kl'] as const) {
  const width: number[] = [];
  const ends: number[] = [];
  for (const t of tensors) {
    const e = exact.get(t)!;
    let a, b;
    try {
      a = observeActivation(obs, e, aSpec);
      b = observeActivation(obs, fast.get(t)!, aSpec);
    } catch {
      continue;
    }
    const we = a.max[0] - a.min[0];
    const wf = b.max[0] - b.min[0];
    width.push(Math.abs(wf - we) / Math.max(we, 1e-12));
    const bin = (e.histHi! - e.histLo!) / DEFAULT_BINS;
    ends.push(Math.max(Math.abs(b.max[0] - a.max[0]), Math.abs(b.min[0] - a.min[0])) / bin);
  }
  if (!width.length) continue;
  const med = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
  console.log(
    `${obs}: ${width.length} tensors; range width change median ${(100 * med(width)).toFixed(3)}%, max ${(100 * Math.max(...width)).toFixed(3)}%; ends moved median ${med(ends).toFixed(2)} bins, max ${Math.max(...ends).toFixed(2)} bins`,
  );
}
