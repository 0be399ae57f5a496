/**
 * `npm run bench:webgpu`: WebGPU against wasm, in headless Chromium with --enable-unsafe-webgpu.
 *
 * 1. Node placement (any adapter, SwiftShader included: placement is decided when a session
 *    is created): for the tiny classifier and, with ../shared/data, the real MobileNet-V2,
 *    every graph a run hands a WebGPU engine (scripts/webgpu-graphs.ts: FP32, calibration,
 *    the evaluated fake-quant model, GPTQ reconstruction) goes through onnxruntime's own
 *    placement log (tests/e2e/ort-page.ts); the table says how many nodes land on the WebGPU
 *    provider and how many on the CPU, with the copies ORT adds around them; the element-wise
 *    fake-quant form with Round is placed beside it for contrast.
 * 2. Results against wasm, outside the app: FP32 and the evaluated fake-quant model on the
 *    same images on WebGPU and on wasm (top-1 decisions, agreement, largest logit gap), and
 *    the W8A8 QDQ exports (TensorRT int8, academic uint8) likewise (onnxruntime issue 32578).
 * 3. The app's runs (as before): on a real GPU, the real MobileNet-V2 with 128 + 128 images,
 *    MinMax and MSE, each stage timed on both engines, with the WebGPU / wasm ratios; on a
 *    software adapter, correctness only on the tiny classifier (`--synthetic`: the synthetic
 *    MobileNet-V2 of `npm run make-models`, many minutes on 2 cores).
 * Exit code 1 when a graph places a node on the CPU, the engines disagree, or a run fails.
 *
 * Usage (`--help`; scripts/cli-specs.ts): npm run bench:webgpu -- [--images 128] [--check-images 4] [--force-gpu] [--synthetic]
 *   [--no-app] [--no-placement] [--no-mobilenet] [--json FILE]   (builds dist/ when missing)
 * --json writes {adapter, fallbackNodes: {fp32, fakeQuant, calibration, reconstruction} (of
 * MobileNet-V2 when present, else of the tiny classifier), placement, results}.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { prepareCrops } from '../src/lib/data/crops.ts';
import { DiskCropStore, loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../src/lib/data/preprocess.ts';
import type { EngineSession, SessionOptions } from '../src/lib/engine/types.ts';
import { evaluate } from '../src/lib/experiment/evaluate.ts';
import { table } from '../src/lib/experiment/report.ts';
import { buildMobileNetV2 } from '../src/lib/models/builders.ts';
import { QDQ_SESSION_CONFIG } from '../src/lib/onnx/fq-qdq.ts';
import { foldBatchNorm } from '../src/lib/onnx/fold-bn.ts';
import type { Graph } from '../src/lib/onnx/ir.ts';
import { parseModel, serializeModel } from '../src/lib/onnx/model.ts';
import { agreement } from '../src/lib/quant/metrics.ts';
import { launch, setNumber, runAndWait } from '../tests/e2e/helpers.ts';
import { adapterInfo, openOrtPage, type OrtPage } from '../tests/e2e/ort-page.ts';
import { startStagePoll, stopStagePoll } from './stage-poll.ts';
import {
  GRAPH_KINDS,
  placeByKind,
  qdqExport,
  recordWebGpuGraphs,
  w8a8Run,
  webgpuEvaluated,
  syntheticCrops,
  tinyClassifier,
  type GraphKind,
  type KindPlacement,
} from './webgpu-graphs.ts';
import { parseCliOrExit } from '../src/cli/options.ts';
import { BENCH_WEBGPU_CLI } from './cli-specs.ts';

const SHARED = resolve(import.meta.dirname, '../../shared/data');
const opts = parseCliOrExit(BENCH_WEBGPU_CLI).values as {
  images: number;
  checkImages: number;
  json?: string;
  forceGpu: boolean;
  synthetic: boolean;
  noApp: boolean;
  noPlacement: boolean;
  noMobilenet: boolean;
};
const { images, checkImages } = opts;
const jsonFile = opts.json;
const MOBILENET = resolve(SHARED, 'models/mobilenetv2-7-fp32.onnx');
const withMobileNet = !opts.noMobilenet && existsSync(MOBILENET);
if (!existsSync('/usr/bin/chromium')) {
  console.error('bench:webgpu needs Chromium at /usr/bin/chromium.');
  process.exit(1);
}

interface Measured {
  engine: string;
  seconds: number;
  stages: Record<string, number>;
  fp32top1: string;
  qtop1: string;
  agreement: string;
}

/** One run on one engine; stage times from polling the progress element's data-stage. */
async function runOn(page: Page, engine: 'webgpu' | 'wasm'): Promise<Measured> {
  await page.locator(`[data-engine=${engine}]`).check();
  await startStagePoll(page);
  const t0 = await page.evaluate(() => performance.now());
  await runAndWait(page, 600_000);
  const t1 = await page.evaluate(() => performance.now());
  const stages = await stopStagePoll(page);
  const t = (sel: string) => page.locator(sel).first().innerText();
  const used = await page.locator('[data-testid=engine-used]').getAttribute('data-engine-kind');
  if (used !== engine)
    throw new Error(
      `The ${engine} run fell back to ${used}: ${await page
        .locator('[data-testid=fallback]')
        .innerText()
        .catch(() => '(no reason shown)')}`,
    );
  return {
    engine,
    seconds: (t1 - t0) / 1000,
    stages,
    fp32top1: await t('[data-testid=results] tr[data-row=fp32] [data-metric=top1]'),
    qtop1: await t('[data-testid=results] tr[data-row=quant] [data-metric=top1]'),
    agreement: await t('[data-testid=results] [data-metric=agreement]'),
  };
}

async function selectObserver(page: Page, observer: string): Promise<void> {
  await page.locator('[data-field=aObserver]').selectOption(observer);
}

interface ModelUnderTest {
  name: string;
  graph: Graph;
  /** crops the graphs are recorded with (calibration, reconstruction) */
  recordCrops: Uint8Array[];
  /** crops the WebGPU and wasm results are compared on */
  checkCrops: Uint8Array[];
}

interface ResultCheck {
  what: string;
  images: number;
  sameTop1: number;
  agreementWebGpu: number;
  agreementWasm: number;
  maxLogitGap: number;
}

async function modelsUnderTest(): Promise<ModelUnderTest[]> {
  const tiny = syntheticCrops(8);
  const models: ModelUnderTest[] = [
    { name: 'tiny classifier', graph: tinyClassifier(), recordCrops: tiny.slice(0, 4), checkCrops: tiny },
  ];
  if (withMobileNet) {
    const dataset = await loadImageFolder(resolve(SHARED, 'imagenet-sample'));
    const n = Math.max(checkImages, 2);
    const { crops } = await prepareCrops(dataset.items.slice(0, n), TORCHVISION_SPEC, new DiskCropStore(), {});
    const real = crops.filter((c): c is Uint8Array => !!c);
    models.push({
      name: 'MobileNet-V2',
      graph: foldBatchNorm(parseModel(new Uint8Array(readFileSync(MOBILENET)))).graph,
      recordCrops: real.slice(0, 2),
      checkCrops: real.slice(0, checkImages),
    });
  }
  return models;
}

/** Logits of `model` on the crops in one batch, through evaluate() for the top-1 decisions. */
async function logitsAndPreds(
  ort: OrtPage,
  model: Uint8Array,
  provider: 'webgpu' | 'wasm',
  crops: Uint8Array[],
  options: SessionOptions = {},
): Promise<{ logits: Float32Array; preds: Int32Array }> {
  const s: EngineSession = await ort.session(model, provider, options);
  try {
    let logits: Float32Array = new Float32Array(0);
    const keep: EngineSession = {
      ...s,
      run: async (feeds, fetches) => {
        const out = await s.run(feeds, fetches);
        logits = out[s.outputNames[0]].data;
        return out;
      },
    };
    const o = await evaluate(
      keep,
      crops,
      crops.map(() => 0),
      TORCHVISION_SPEC,
      { batchSize: crops.length },
    );
    return { logits, preds: o.preds };
  } finally {
    await s.release();
  }
}

/** A model and its reference (FP32) on WebGPU and on wasm: same top-1 decisions? same agreement? */
async function compareEngines(
  ort: OrtPage,
  what: string,
  model: Uint8Array,
  reference: { webgpu: Int32Array; wasm: Int32Array },
  crops: Uint8Array[],
  options: SessionOptions = {},
): Promise<ResultCheck & { preds: { webgpu: Int32Array; wasm: Int32Array } }> {
  const g = await logitsAndPreds(ort, model, 'webgpu', crops, options);
  const w = await logitsAndPreds(ort, model, 'wasm', crops, options);
  let gap = 0;
  for (let i = 0; i < g.logits.length; i++) gap = Math.max(gap, Math.abs(g.logits[i] - w.logits[i]));
  return {
    what,
    images: crops.length,
    sameTop1: agreement(g.preds, w.preds),
    agreementWebGpu: reference.webgpu.length ? agreement(reference.webgpu, g.preds) : 1,
    agreementWasm: reference.wasm.length ? agreement(reference.wasm, w.preds) : 1,
    maxLogitGap: gap,
    preds: { webgpu: g.preds, wasm: w.preds },
  };
}

const json: Record<string, unknown> = {};
let failed = false;

/** Sections 1 and 2 (see header). */
async function placementAndResults(): Promise<void> {
  const ort = await openOrtPage();
  try {
    console.log(`WebGPU adapter: ${ort.adapter.text}${ort.adapter.software ? ' (software)' : ''}`);
    json.adapter = ort.adapter.text;
    if (!ort.adapter.found) {
      console.log('No WebGPU adapter: no placement to measure.');
      return;
    }
    const placement: Record<string, Record<string, KindPlacement>> = {};
    const results: Record<string, ResultCheck[]> = {};
    for (const m of await modelsUnderTest()) {
      const t0 = performance.now();
      const rec = await recordWebGpuGraphs(m.graph, m.recordCrops, TORCHVISION_SPEC);
      if (!opts.noPlacement) {
        const placed: Record<string, KindPlacement> = await placeByKind(ort, rec.graphs);
        const before = await placeByKind(ort, {
          fp32: [],
          fakeQuant: [rec.elementWise],
          calibration: [],
          reconstruction: [],
        });
        placed['fakeQuant, element-wise with Round (not evaluated on WebGPU)'] = before.fakeQuant;
        placement[m.name] = placed;
        console.log(`\nNode placement on WebGPU, ${m.name} (${((performance.now() - t0) / 1000).toFixed(0)} s):`);
        console.log(
          table(
            ['graphs', 'count', 'nodes', 'on WebGPU', 'on CPU', 'copies', 'CPU op types'],
            Object.entries(placed).map(([kind, k]) => [
              kind,
              String(k.graphs),
              String(k.nodes),
              String(k.nodes - k.cpuNodes - k.copies),
              String(k.cpuNodes),
              String(k.copies),
              Object.entries(k.cpuOps)
                .map(([op, n]) => `${op} ${n}`)
                .join(', ') || '-',
            ]),
          ),
        );
        for (const kind of GRAPH_KINDS) failed ||= placed[kind].cpuNodes > 0;
        json.fallbackNodes = Object.fromEntries(GRAPH_KINDS.map((k) => [k, placed[k].cpuNodes])) as Record<
          GraphKind,
          number
        >;
      }

      const t1 = performance.now();
      const fp = await compareEngines(
        ort,
        'FP32',
        rec.graphs.fp32[0],
        { webgpu: new Int32Array(0), wasm: new Int32Array(0) },
        m.checkCrops,
      );
      const checks: ResultCheck[] = [fp];
      checks.push(
        await compareEngines(ort, 'fake-quant as evaluated, W4A8 academic', rec.fakeQuant, fp.preds, m.checkCrops),
      );
      const qdq: [string, Uint8Array][] = [];
      for (const backend of ['tensorrt', 'academic'] as const) {
        const run = w8a8Run(m.graph, rec.stats, backend, m.checkCrops, TORCHVISION_SPEC);
        const name = backend === 'tensorrt' ? 'W8A8 TensorRT (int8 activations)' : 'W8A8 academic (uint8 activations)';
        checks.push(
          await compareEngines(ort, `fake-quant as evaluated, ${name}`, webgpuEvaluated(run), fp.preds, m.checkCrops),
        );
        qdq.push([`QDQ export ${name}`, qdqExport(run)]);
      }
      const exports = checks.length;
      for (const [label, model] of qdq) {
        checks.push(
          await compareEngines(ort, `${label}, as written`, model, fp.preds, m.checkCrops, {
            config: QDQ_SESSION_CONFIG,
          }),
        );
        checks.push(await compareEngines(ort, `${label}, ORT defaults`, model, fp.preds, m.checkCrops));
      }
      results[m.name] = checks;
      console.log(
        `\nWebGPU against wasm, ${m.name}, ${m.checkCrops.length} images (${((performance.now() - t1) / 1000).toFixed(0)} s):`,
      );
      const pct = (x: number) => `${(100 * x).toFixed(0)} %`;
      console.log(
        table(
          ['model', 'same top-1', 'agreement with FP32 WebGPU / wasm', 'largest logit gap'],
          checks.map((c) => [
            c.what,
            pct(c.sameTop1),
            c.what === 'FP32' ? '-' : `${pct(c.agreementWebGpu)} / ${pct(c.agreementWasm)}`,
            c.maxLogitGap.toExponential(2),
          ]),
        ),
      );
      // the simulation must agree; the exports are reported (upstream kernels may differ)
      failed ||= checks.slice(0, exports).some((c) => c.sameTop1 < 1 || c.agreementWebGpu !== c.agreementWasm);
    }
    json.placement = placement;
    json.results = results;
  } finally {
    await ort.close();
  }
}

await placementAndResults().catch((e) => {
  failed = true;
  console.error(`bench:webgpu placement failed: ${(e as Error).stack ?? e}`);
});
if (jsonFile) {
  writeFileSync(jsonFile, JSON.stringify(json, null, 2) + '\n');
  console.error(`wrote ${jsonFile}`);
}

/** Section 3: the app's runs (see header). */
async function appRuns(): Promise<void> {
  const session = await launch();
  const { page } = session;
  try {
    await page.goto(session.base);
    await page.waitForSelector('main[data-ready=true]');
    const gpu = await adapterInfo(page);
    const real = gpu.found && (!gpu.software || opts.forceGpu);
    console.log(`WebGPU adapter: ${gpu.text}${gpu.software ? ' (software)' : ''}`);
    if (!real) {
      console.log(
        `No GPU here (${gpu.found ? 'only a software adapter' : gpu.text}): no speed figures. Checking WebGPU correctness against wasm on a small model instead.`,
      );
      if (!gpu.found) {
        console.log('No WebGPU adapter at all: nothing to compare.');
        process.exitCode = 0;
      } else {
        const synthetic = opts.synthetic;
        const name = synthetic ? 'synthetic-mobilenet-v2.onnx' : 'tiny-classifier.onnx';
        await page.locator('[data-testid=model-file]').setInputFiles({
          name,
          mimeType: 'application/octet-stream',
          buffer: Buffer.from(synthetic ? buildMobileNetV2(1) : serializeModel(tinyClassifier())),
        });
        await page.waitForSelector(`section[data-state=ready] [data-testid=model-current]:has-text("${name}")`, {
          timeout: 120_000,
        });
        await page.locator('[data-testid=shared-data]').click();
        await page.waitForSelector('section[data-state=ready] [data-testid=data-current]', { timeout: 120_000 });
        await setNumber(page, 'calib', synthetic ? 4 : 8);
        await setNumber(page, 'eval', synthetic ? 8 : 24);
        await page.locator('[data-field=analyze]').check();
        await setNumber(page, 'analysisImages', 4);
        for (const obs of ['minmax', 'mse']) {
          await selectObserver(page, obs);
          const g = await runOn(page, 'webgpu');
          const w = await runOn(page, 'wasm');
          const same = g.fp32top1 === w.fp32top1 && g.qtop1 === w.qtop1 && g.agreement === w.agreement;
          console.log(
            `${name}, ${obs}: WebGPU (software) FP32 top-1 ${g.fp32top1}, quant ${g.qtop1}, agreement ${g.agreement}; wasm ${w.fp32top1}, ${w.qtop1}, ${w.agreement}: ${same ? 'same' : 'DIFFERENT'}`,
          );
          failed ||= !same;
        }
      }
    } else {
      if (!existsSync(resolve(SHARED, 'models/mobilenetv2-7-fp32.onnx')))
        throw new Error('The real MobileNet-V2 is missing from ../shared/data/models.');
      await page.locator('[data-testid=shared-model]', { hasText: 'mobilenetv2-7-fp32.onnx' }).click();
      await page.waitForSelector('section[data-state=ready] [data-testid=model-current]', { timeout: 120_000 });
      await page.locator('[data-testid=shared-data]').click();
      await page.waitForSelector('section[data-state=ready] [data-testid=data-current]', { timeout: 120_000 });
      await setNumber(page, 'calib', images);
      await setNumber(page, 'eval', images);
      await page.locator('[data-field=analyze]').check();
      await setNumber(page, 'analysisImages', Math.min(64, images));
      // a first wasm run decodes and caches the crops, so neither measured run pays for decoding
      await selectObserver(page, 'minmax');
      await runOn(page, 'wasm');
      for (const obs of ['minmax', 'mse']) {
        await selectObserver(page, obs);
        const g = await runOn(page, 'webgpu');
        const w = await runOn(page, 'wasm');
        const same = g.fp32top1 === w.fp32top1 && g.qtop1 === w.qtop1 && g.agreement === w.agreement;
        failed ||= !same;
        console.log(
          `\n${obs === 'minmax' ? 'MinMax' : 'MSE (histogram)'} calibration, ${images} + ${images} images, analysis on ${Math.min(64, images)}:`,
        );
        for (const s of new Set([...Object.keys(w.stages), ...Object.keys(g.stages)])) {
          const [a, b] = [g.stages[s] ?? 0, w.stages[s] ?? 0];
          console.log(
            `  ${s.padEnd(10)} WebGPU ${a.toFixed(2).padStart(7)} s   wasm ${b.toFixed(2).padStart(7)} s   WebGPU/wasm ${b > 0 ? (a / b).toFixed(2) : '-'}×`,
          );
        }
        console.log(
          `  ${'total'.padEnd(10)} WebGPU ${g.seconds.toFixed(2).padStart(7)} s   wasm ${w.seconds.toFixed(2).padStart(7)} s   WebGPU/wasm ${(g.seconds / w.seconds).toFixed(2)}×`,
        );
        console.log(
          `  top-1 FP32 ${g.fp32top1} / ${w.fp32top1}, quant ${g.qtop1} / ${w.qtop1}, agreement ${g.agreement} / ${w.agreement}: ${same ? 'same on both engines' : 'DIFFERENT'}`,
        );
      }
    }
  } catch (e) {
    failed = true;
    console.error(`bench:webgpu failed: ${(e as Error).message}`);
  } finally {
    await session.close();
  }
}

if (!opts.noApp) await appRuns();
if (failed) process.exitCode = 1;
