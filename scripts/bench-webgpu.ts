/**
 * `npm run bench:webgpu`: WebGPU against wasm in the built app (headless Chromium with
 * --enable-unsafe-webgpu, driven through the UI and its worker like bench:browser), so a
 * machine with a GPU measures in one short run (≤ 5 min) what the GPU buys a student:
 * real MobileNet-V2, 128 calibration + 128 evaluation images, FP32 evaluation, MinMax
 * calibration, a histogram observer's calibration (MSE), fake-quant evaluation and the
 * per-layer analysis, each timed per stage from the run panel's progress, on both engines;
 * prints the WebGPU / wasm ratios and checks that both give the same top-1 figures.
 *
 * Without a GPU (no adapter, or Chromium's SwiftShader software adapter, told by the
 * adapter info) it says so and only checks correctness, WebGPU (SwiftShader) against wasm,
 * on a tiny seeded conv classifier (8 images; `--synthetic` uses the synthetic MobileNet-V2
 * of `npm run make-models` instead, which SwiftShader needs many minutes for on 2 cores).
 * Exit code 1 when the two engines disagree or a run fails.
 *
 * Usage: npm run bench:webgpu -- [--images 128] [--force-gpu] [--synthetic]   (builds dist/ when missing)
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { buildMobileNetV2 } from '../src/lib/models/builders.ts';
import { makeGraph, makeNode, makeTensor, makeValueInfo } from '../src/lib/onnx/ir.ts';
import { serializeModel } from '../src/lib/onnx/model.ts';
import { launch, setNumber, runAndWait } from '../tests/e2e/helpers.ts';
import { startStagePoll, stopStagePoll } from './stage-poll.ts';

const SHARED = resolve(import.meta.dirname, '../../shared/data');
const argv = process.argv.slice(2);
const images = argv.includes('--images') ? Number(argv[argv.indexOf('--images') + 1]) : 128;
if (!(images >= 1)) {
  console.error('bench:webgpu: --images needs a positive number of images, e.g. --images 128.');
  process.exit(2);
}
if (!existsSync('/usr/bin/chromium')) {
  console.error('bench:webgpu needs Chromium at /usr/bin/chromium.');
  process.exit(1);
}

/** Conv → ReLU → pool → Gemm over 1,000 classes, seeded: runs in seconds on SwiftShader. */
function tinyClassifier(): Uint8Array {
  let a = 12345;
  const rnd = () => {
    a = (a * 1103515245 + 12345) >>> 0;
    return a / 2 ** 32 - 0.5;
  };
  const g = makeGraph({
    opset: 13,
    inputs: [makeValueInfo('input', ['N', 3, 224, 224])],
    outputs: [makeValueInfo('logits', ['N', 1000])],
    initializers: [
      makeTensor('w', [8, 3, 3, 3], Float32Array.from({ length: 8 * 27 }, rnd)),
      makeTensor(
        'b',
        [8],
        Float32Array.from({ length: 8 }, () => rnd() * 0.1),
      ),
      makeTensor(
        'fw',
        [1000, 8],
        Float32Array.from({ length: 8000 }, () => rnd() * 4),
      ),
      makeTensor(
        'fb',
        [1000],
        Float32Array.from({ length: 1000 }, () => rnd() * 0.1),
      ),
    ],
    nodes: [
      makeNode('Conv', ['input', 'w', 'b'], ['c'], { kernel_shape: [3, 3], strides: [4, 4], pads: [1, 1, 1, 1] }),
      makeNode('Relu', ['c'], ['r']),
      makeNode('GlobalAveragePool', ['r'], ['p']),
      makeNode('Flatten', ['p'], ['f'], { axis: 1 }),
      makeNode('Gemm', ['f', 'fw', 'fb'], ['logits'], { transB: 1 }),
    ],
  });
  return serializeModel(g);
}

interface Measured {
  engine: string;
  seconds: number;
  stages: Record<string, number>;
  fp32top1: string;
  qtop1: string;
  agreement: string;
}

/** What the page's WebGPU adapter is; software: SwiftShader or a fallback adapter. */
async function adapterInfo(page: Page): Promise<{ found: boolean; software: boolean; text: string }> {
  return page.evaluate(async () => {
    const gpu = (
      navigator as Navigator & {
        gpu?: { requestAdapter(): Promise<null | { info?: Record<string, string>; isFallbackAdapter?: boolean }> };
      }
    ).gpu;
    if (!gpu) return { found: false, software: true, text: 'navigator.gpu is missing' };
    const a = await gpu.requestAdapter();
    if (!a) return { found: false, software: true, text: 'no adapter' };
    const info = a.info ?? {};
    const text =
      ['vendor', 'architecture', 'device', 'description']
        .map((k) => info[k])
        .filter(Boolean)
        .join(' / ') || 'no adapter info';
    return { found: true, software: !!a.isFallbackAdapter || /swiftshader|llvmpipe|software/i.test(text), text };
  });
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

const session = await launch();
const { page } = session;
let failed = false;
try {
  await page.goto(session.base);
  await page.waitForSelector('main[data-ready=true]');
  const gpu = await adapterInfo(page);
  const real = gpu.found && (!gpu.software || argv.includes('--force-gpu'));
  console.log(`WebGPU adapter: ${gpu.text}${gpu.software ? ' (software)' : ''}`);
  if (!real) {
    console.log(
      `No GPU here (${gpu.found ? 'only a software adapter' : gpu.text}): no speed figures. Checking WebGPU correctness against wasm on a small model instead.`,
    );
    if (!gpu.found) {
      console.log('No WebGPU adapter at all: nothing to compare.');
      process.exitCode = 0;
    } else {
      const synthetic = argv.includes('--synthetic');
      const name = synthetic ? 'synthetic-mobilenet-v2.onnx' : 'tiny-classifier.onnx';
      await page.locator('[data-testid=model-file]').setInputFiles({
        name,
        mimeType: 'application/octet-stream',
        buffer: Buffer.from(synthetic ? buildMobileNetV2(1) : tinyClassifier()),
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
if (failed) process.exitCode = 1;
