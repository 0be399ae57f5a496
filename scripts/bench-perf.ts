/**
 * `npm run bench:perf`: speed ratios measured side by side in one run on the same
 * images and the same engine (targets from the core engine issue):
 *   product evaluation / raw session.run on pre-made tensors   ≤ 1.15×  productRatio
 *   MinMax calibration pass / one FP32 pass                     ≤ 2×     minmaxRatio
 *   histogram-observer calibration / one FP32 pass              ≤ 2×     histogramRatio
 *   fake-quant evaluation / FP32 evaluation                     ≤ 1.3×   fakeQuantRatio
 *     (the pipeline's evaluated form: bit-exact Q/DQ pairs, onnx/fq-qdq.ts; the element-wise
 *     form and the folded scales are timed beside it, with their top-1 decisions compared)
 *   JPEG decoding: jpeg-js time / wasm libjpeg-turbo time       ≥ 3.5×   decodeSpeedup
 * (with the whole decode+resize+crop time per image beside the last).
 * Ratios, not absolute times, are the claim: these machines are noisy. Each round measures
 * everything once, interleaved; each ratio is taken within a round (the round's measurement
 * over the same round's baseline), and the report gives the median of the rounds' ratios
 * with their range, so load that comes and goes moves single rounds, not one side of a ratio.
 * `--load N` starts N other CPU-bound processes for the whole measurement (scripts/cpu-load.ts)
 * and stops them after: the targets must hold on a machine that is doing other things too.
 * Options (`--help`; scripts/cli-specs.ts): --model FILE --data DIR [--images N] [--engine wasm|node] [--threads N]
 *   [--repeats N (rounds, default 5)] [--load N] [--models all|none|id,id] [--model-images N]
 *   [--json FILE] (writes {productRatio, minmaxRatio, histogramRatio, fakeQuantRatio,
 *   decodeSpeedup} as medians of per-round ratios, plus load and rounds)
 * Then, unless --models none: evaluation throughput (images/s) of the three synthetic
 * exact architectures next to the same-session raw ORT figure (scripts/perf-models.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { prepareCrops } from '../src/lib/data/crops.ts';
import { DiskCropStore, loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC, preprocessToCrop } from '../src/lib/data/preprocess.ts';
import { decodeImage, initJpegDecoder } from '../src/lib/data/decode.ts';
import { decodeImageJpegJs } from '../src/lib/data/decode-jpegjs.ts';
import { createNodeEngine } from '../src/lib/engine/node.ts';
import { batches } from '../src/lib/experiment/batches.ts';
import { collectActivationStats, DEFAULT_BINS } from '../src/lib/experiment/calibrate.ts';
import { resolveConfig } from '../src/lib/config/resolve.ts';
import { evaluate } from '../src/lib/experiment/evaluate.ts';
import { quantizeActivations, quantizeWeights } from '../src/lib/experiment/quantize.ts';
import { table } from '../src/lib/experiment/report.ts';
import { insertFakeQuant } from '../src/lib/onnx/fake-quant.ts';
import { foldBatchNorm } from '../src/lib/onnx/fold-bn.ts';
import { foldFakeQuantScales } from '../src/lib/onnx/fold-fq-scales.ts';
import { DEFAULT_TUNING } from '../src/lib/experiment/inputs.ts';
import { evaluationModel } from '../src/lib/experiment/evaluate.ts';
import { parseModel, serializeModel } from '../src/lib/onnx/model.ts';
import { findQuantPoints, ALL_PLACEMENT } from '../src/lib/onnx/placement.ts';
import { measureModel, parseModelList, throughputTable } from './perf-models.ts';
import { roundRatios, startCpuLoad } from './cpu-load.ts';
import { configValue, parseCliOrExit } from '../src/cli/options.ts';
import { BENCH_PERF_CLI } from './cli-specs.ts';

const cli = parseCliOrExit(BENCH_PERF_CLI);
const v = {
  ...(cli.values as { images: number; repeats: number; load: number; models: string; modelImages: number }),
  engine: cli.values.engine as 'wasm' | 'node',
  threads: cli.values.threads as number | undefined,
  json: cli.values.json as string | undefined,
  model: configValue(cli, 'model') as string,
  data: configValue(cli, 'dataset') as string,
};
const MODELS = parseModelList(v.models);
const N = v.images;
const spec = TORCHVISION_SPEC;
const B = 32;
const REPEATS = v.repeats;
const LOAD = v.load;

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await fn();
  return [(performance.now() - t0) / 1000, r];
}

function batchesOf(crops: Uint8Array[]) {
  return [...batches(crops, spec, B)];
}

async function main() {
  const engine = await createNodeEngine(v.engine, v.threads);
  const dataset = await loadImageFolder(v.data);
  const items = dataset.items.slice(0, N);
  const { crops } = await prepareCrops(items, spec, new DiskCropStore(), {});
  const imgs = crops.filter((c): c is Uint8Array => !!c);
  const labels = items.map((i) => i.label);
  const graph = foldBatchNorm(parseModel(new Uint8Array(readFileSync(v.model)))).graph;
  const fp32Bytes = serializeModel(graph);
  const tensors = batchesOf(imgs);
  console.error(`engine: ${engine.description}; ${imgs.length} images, batch ${B}`);

  const points = findQuantPoints(graph, ALL_PLACEMENT);
  const tensorsToWatch = points.activations.map((p) => p.tensor);
  const calibOpts = { batchSize: B, histBatchSize: DEFAULT_TUNING.histBatch, bins: DEFAULT_BINS, moments: false };
  const stats = await collectActivationStats(engine, graph, tensorsToWatch, imgs, spec, {
    ...calibOpts,
    histogram: false,
  });
  const cfg = resolveConfig({ backend: 'tensorrt' });
  const weights = quantizeWeights(graph, points, cfg);
  const acts = quantizeActivations(points, stats, cfg);
  const fqGraph = insertFakeQuant(graph, {
    weights: new Map(weights.map((w) => [w.point.initializer, w.values])),
    activations: new Map(acts.map((a) => [a.point.tensor, a.qparams])),
  });
  const fq = serializeModel(fqGraph);
  const folded = foldFakeQuantScales(fqGraph);
  const fqFold = serializeModel(folded.graph);
  console.error(
    `folded scales: ${folded.report.producerFolds} Div and ${folded.report.consumerFolds} Mul of ${folded.report.quantizers} quantizers`,
  );

  // Sessions are created (and warmed up) once; each measurement is repeated, interleaved
  // with the others, and the median is kept, so a burst of load on the machine moves one
  // sample rather than one side of a ratio. Calibration times include creating their
  // statistics graphs' sessions, as a real run does.
  const fpSession = await engine.createSession(fp32Bytes);
  const fqSession = await engine.createSession(fq);
  const fqFoldSession = await engine.createSession(fqFold);
  const evalModel = evaluationModel(engine, fqGraph, {});
  const fqQdqSession = await engine.createSession(evalModel.bytes, evalModel.options);
  for (const s of [fpSession, fqSession, fqFoldSession, fqQdqSession])
    await s.run({ [s.inputNames[0]]: tensors[0].tensor });
  // Decoding: the same JPEG bytes through both decoders (outputs checked to be the same size).
  await initJpegDecoder();
  const jpegBytes = await Promise.all(items.map((i) => i.read()));
  for (const b of jpegBytes.slice(0, 4)) {
    const [a, c] = [decodeImage(b), decodeImageJpegJs(b)];
    if (a.width !== c.width || a.height !== c.height)
      throw new Error('The two JPEG decoders disagree on an image size.');
  }
  const load = startCpuLoad(LOAD);
  const loadBefore = loadavg()[0];
  console.error(
    `load: ${LOAD} other CPU-bound process${LOAD === 1 ? '' : 'es'} started; 1-minute load average ${loadBefore.toFixed(2)}`,
  );
  let foldAgreement = '';
  let qdqAgreement = '';
  const samples: Record<string, number[]> = {
    raw: [],
    product: [],
    minmax: [],
    hist: [],
    fq: [],
    fqExact: [],
    fqFold: [],
    jpegjs: [],
    wasm: [],
    prep: [],
  };
  for (let rep = 0; rep < REPEATS; rep++) {
    // each ratio's two sides back to back: raw → calibrations, FP32 evaluation → fake-quant ones
    samples.raw.push(
      (
        await time(async () => {
          for (const b of tensors) await fpSession.run({ [fpSession.inputNames[0]]: b.tensor });
        })
      )[0],
    );
    samples.minmax.push(
      (
        await time(() =>
          collectActivationStats(engine, graph, tensorsToWatch, imgs, spec, { ...calibOpts, histogram: false }),
        )
      )[0],
    );
    samples.hist.push(
      (
        await time(() =>
          collectActivationStats(engine, graph, tensorsToWatch, imgs, spec, { ...calibOpts, histogram: true }),
        )
      )[0],
    );
    samples.product.push((await time(() => evaluate(fpSession, imgs, labels, spec, { batchSize: B })))[0]);
    const [tExact, exactOut] = await time(() => evaluate(fqSession, imgs, labels, spec, { batchSize: B }));
    samples.fqExact.push(tExact);
    const [tFold, foldOut] = await time(() => evaluate(fqFoldSession, imgs, labels, spec, { batchSize: B }));
    samples.fqFold.push(tFold);
    const [tQdq, qdqOut] = await time(() => evaluate(fqQdqSession, imgs, labels, spec, { batchSize: B }));
    samples.fq.push(tQdq);
    if (rep === 0) {
      const same = (o: typeof foldOut) => exactOut.preds.reduce((n, p, i) => n + (p === o.preds[i] ? 1 : 0), 0);
      foldAgreement = `${same(foldOut)}/${exactOut.preds.length} top-1 predictions equal, top-1 hits ${exactOut.top1Hits} exact vs ${foldOut.top1Hits} folded`;
      qdqAgreement = `${same(qdqOut)}/${exactOut.preds.length} top-1 predictions equal, top-1 hits ${exactOut.top1Hits} element-wise vs ${qdqOut.top1Hits} Q/DQ`;
    }
    samples.jpegjs.push(
      (
        await time(async () => {
          for (const b of jpegBytes) decodeImageJpegJs(b);
        })
      )[0],
    );
    samples.wasm.push(
      (
        await time(async () => {
          for (const b of jpegBytes) decodeImage(b);
        })
      )[0],
    );
    samples.prep.push(
      (
        await time(async () => {
          for (const b of jpegBytes) preprocessToCrop(decodeImage(b), spec);
        })
      )[0],
    );
    console.error(
      `round ${rep + 1}/${REPEATS}: ${Object.entries(samples)
        .map(([k, v]) => `${k} ${v[rep].toFixed(2)} s`)
        .join(', ')}`,
    );
  }
  await load.stop();
  const loadAfter = loadavg()[0];
  await fpSession.release();
  await fqSession.release();
  await fqFoldSession.release();
  await fqQdqSession.release();
  const r = {
    product: roundRatios(samples.product, samples.raw),
    minmax: roundRatios(samples.minmax, samples.raw),
    hist: roundRatios(samples.hist, samples.raw),
    fq: roundRatios(samples.fq, samples.product),
    fqExact: roundRatios(samples.fqExact, samples.product),
    fqFold: roundRatios(samples.fqFold, samples.product),
    decode: roundRatios(samples.jpegjs, samples.wasm),
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const prepPerImage = (1000 * median(samples.prep)) / jpegBytes.length;
  const ratios = {
    productRatio: r.product.median,
    minmaxRatio: r.minmax.median,
    histogramRatio: r.hist.median,
    fakeQuantRatio: r.fq.median,
    decodeSpeedup: r.decode.median,
  };

  const secs = (xs: number[]) => `${median(xs).toFixed(2)}`;
  const range = (q: { min: number; max: number }) => `${q.min.toFixed(2)}–${q.max.toFixed(2)}`;
  const row = (what: string, a: number[], b: number[], q: typeof r.hist, target: number) => [
    what,
    secs(a),
    secs(b),
    q.median.toFixed(2) + '×',
    range(q),
    `≤ ${target}×`,
    q.median <= target ? 'met' : 'NOT met',
  ];
  console.log(
    `${REPEATS} rounds, ${LOAD} other CPU-bound process${LOAD === 1 ? '' : 'es'}; 1-minute load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after (2 cores here)`,
  );
  console.log(
    table(
      ['measurement', 'median s', 'baseline s', 'ratio (median of rounds)', 'rounds', 'target', ''],
      [
        row('product evaluation vs raw session.run', samples.product, samples.raw, r.product, 1.15),
        row('MinMax calibration vs one FP32 pass', samples.minmax, samples.raw, r.minmax, 2),
        row('histogram calibration vs one FP32 pass', samples.hist, samples.raw, r.hist, 2),
        row(
          `fake-quant eval as evaluated: Q/DQ pairs, bit-exact (${acts.length} act points) vs FP32 eval`,
          samples.fq,
          samples.product,
          r.fq,
          1.3,
        ),
        row(
          'fake-quant eval, element-wise Div/Round/Clip/Mul (reference)',
          samples.fqExact,
          samples.product,
          r.fqExact,
          1.5,
        ),
        row('fake-quant eval, scales folded (opt-in foldScales)', samples.fqFold, samples.product, r.fqFold, 1.3),
        [
          `JPEG decode, jpeg-js vs wasm libjpeg-turbo (${jpegBytes.length} images)`,
          secs(samples.jpegjs),
          secs(samples.wasm),
          r.decode.median.toFixed(2) + '× faster',
          range(r.decode),
          '≥ 3.5×',
          r.decode.median >= 3.5 ? 'met' : 'NOT met',
        ],
      ],
    ),
  );
  console.log(`Q/DQ vs element-wise fake-quant: ${qdqAgreement}`);
  console.log(`folded vs element-wise fake-quant: ${foldAgreement}`);
  console.log(`decode+resize+crop: ${prepPerImage.toFixed(1)} ms per image (wasm decoder, one thread)`);
  if (v.json) {
    const perRound = Object.fromEntries(Object.entries(r).map(([k, q]) => [k, q.rounds]));
    writeFileSync(v.json, JSON.stringify({ ...ratios, load: LOAD, rounds: REPEATS, perRound }, null, 2) + '\n');
    console.error(`wrote ${v.json}`);
  }

  if (MODELS.length) {
    const n = Math.min(v.modelImages, imgs.length);
    console.error(`synthetic architectures: ${MODELS.join(', ')}; ${n} images, batch ${B}, median of ${REPEATS}`);
    const rows = [];
    for (const id of MODELS) {
      rows.push(
        await measureModel(engine, id, imgs.slice(0, n), labels.slice(0, n), spec, { batch: B, repeats: REPEATS }),
      );
      console.error(`  ${id} done`);
    }
    console.log(`\nEvaluation throughput, ${engine.description}, this machine (SYNTHETIC seeded weights: timing only)`);
    console.log(throughputTable(rows));
  }
}

await main();
