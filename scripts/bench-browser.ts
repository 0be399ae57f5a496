/**
 * `npm run bench:browser`: the same experiment (real MobileNet-V2, the same sample images)
 * evaluated in the built app in Chromium (worker, onnxruntime-web wasm) and in Node by the
 * CLI's path (runPipeline + onnxruntime-web wasm, same thread count), plus the browser's
 * first-run vs cached-run (IndexedDB crops and model) time to the first batch, and the
 * first-visit preparation (decode pool: decode, resize, crop, cache) of the whole 1,000-image
 * sample in a fresh browser profile, with the time per image (`--prepare 0` skips it).
 *
 * Also the instant views: `instantMs`, the median over several weight-side changes of the
 * time from the change to the updated weight view (painted), and `estimateSeconds`, the time
 * from a change to the background estimate of W8A8 with the calibration statistics cached,
 * with `estimateSplit`, where the worker's part of it went (statistics, weights, build, evaluate).
 *
 * Usage (`--help`; scripts/cli-specs.ts): npm run bench:browser -- [--calib 32] [--eval 64] [--json FILE] [--instant-only] [--prepare 1000]
 * (--instant-only skips the full-run comparison; --prepare N times the first-visit preparation of N
 * sample images in a fresh profile, 0 skips it). Needs /usr/bin/chromium and
 * ../shared/data; builds dist/ when missing.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { preview } from 'vite';
import { resolveConfig } from '../src/lib/config/resolve.ts';
import { runPipeline } from '../src/lib/pipeline/run.ts';
import { createNodeWasmEngine } from '../src/lib/engine/node.ts';
import { loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../src/lib/data/preprocess.ts';
import { sha256Hex } from '../src/lib/models/identify.ts';
import { currentStage, startStagePoll, stopStagePoll } from './stage-poll.ts';
import { configValue, parseCliOrExit } from '../src/cli/options.ts';
import { BENCH_BROWSER_CLI } from './cli-specs.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SHARED = resolve(ROOT, '../shared/data');
const cli = parseCliOrExit(BENCH_BROWSER_CLI);
const calib = configValue(cli, 'calib') as number;
// "rest": every image of the 1,000-image sample that calibration leaves
const evalCount = configValue(cli, 'eval') as number | 'rest';
const evalN = evalCount === 'rest' ? 1000 - calib : evalCount;
const jsonFile = cli.values.json as string | undefined;
const instantOnly = cli.values.instantOnly as boolean;
const prepareN = cli.values.prepare as number;

if (!existsSync('/usr/bin/chromium') || !existsSync(SHARED)) {
  console.error('bench:browser needs /usr/bin/chromium and ../shared/data.');
  process.exit(1);
}
if (!existsSync(resolve(ROOT, 'dist/index.html')))
  execFileSync('npx', ['vite', 'build'], { cwd: ROOT, stdio: 'inherit' });

const port = await new Promise<number>((res) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as { port: number }).port;
    s.close(() => res(p));
  });
});
const server = await preview({ root: ROOT, logLevel: 'warn', preview: { port, strictPort: true, host: '127.0.0.1' } });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
    '--disable-sync',
    '--disable-quic',
  ],
});

/** In the page: apply one weight control value, resolve with ms until the new weight view is painted. */
const MEASURE_CHANGE = `async function (f, v) {
  const view = document.querySelector('[data-testid=weight-view]');
  const before = Number(view.getAttribute('data-version'));
  const el = document.querySelector('[data-field=' + f + ']');
  const t0 = performance.now();
  el.value = v;
  el.dispatchEvent(new Event('change', { bubbles: true }));
  await new Promise((res) => {
    const poll = () => (Number(view.getAttribute('data-version')) > before ? res() : requestAnimationFrame(poll));
    poll();
  });
  // the chart redraws in the same update; wait for the frame that shows it
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  return performance.now() - t0;
}`;

interface BrowserRun {
  seconds: number;
  wallMs: number;
  msFirstBatch: number;
  top1: string;
}

try {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForSelector('main[data-ready=true]');
  const threads = await page.evaluate(() => (crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency) : 1));
  await page.locator('[data-testid=shared-model]', { hasText: 'mobilenetv2-7-fp32.onnx' }).click();
  await page.waitForSelector('section[data-state=ready] [data-testid=model-current]');
  await page.locator('[data-testid=shared-data]').click();
  await page.waitForSelector('section[data-state=ready] [data-testid=data-current]');
  for (const [f, v] of [
    ['calib', calib],
    ['eval', evalN],
  ] as const) {
    await page.locator(`[data-field=${f}]`).fill(String(v));
    await page.locator(`[data-field=${f}]`).dispatchEvent('change');
  }
  await page.locator('[data-engine=wasm]').check();

  // --- instant weight view: change → updated view painted, over several new settings
  // (measured with the background estimate off: its batches share the worker's thread)
  await page.locator('[data-field=estimate-on]').uncheck();
  await page.waitForSelector('[data-testid=weight-view][data-state=ready]');
  const changes: [string, string][] = [
    ['wBits', '7'],
    ['wBits', '6'],
    ['wBits', '5'],
    ['wBits', '4'],
    ['wGranularity', 'per-tensor'],
    ['wBits', '3'],
    ['wGranularity', 'per-channel'],
    ['wBits', '8'],
  ];
  const instantRuns: number[] = [];
  for (const [field, value] of changes) {
    // in-page code as text: tsx would wrap a function literal in helpers the page lacks
    const ms = (await page.evaluate(
      `(${MEASURE_CHANGE})(${JSON.stringify(field)}, ${JSON.stringify(value)})`,
    )) as number;
    instantRuns.push(ms);
  }
  const sorted = [...instantRuns].sort((a, b) => a - b);
  const instantMs = (sorted[(sorted.length - 1) >> 1] + sorted[sorted.length >> 1]) / 2;
  console.log(
    `instant weight view: median ${instantMs.toFixed(0)} ms over ${instantRuns.length} changes (${instantRuns.map((x) => x.toFixed(0)).join(', ')})`,
  );

  // --- background estimate, W8A8: first one collects the statistics, the next reuses them
  const estimateReady = async (notHash: string | null) => {
    await page.waitForFunction(
      (h) => {
        const e = document.querySelector('[data-testid=estimate]');
        return (
          e?.getAttribute('data-state') === 'ready' &&
          e.getAttribute('data-current') === 'true' &&
          e.getAttribute('data-config-hash') !== h
        );
      },
      notHash,
      { timeout: 900_000 },
    );
    return page.locator('[data-testid=estimate]').getAttribute('data-config-hash');
  };
  const setField = async (f: string, v: string) => {
    await page.locator(`[data-field=${f}]`).fill(v);
    await page.locator(`[data-field=${f}]`).dispatchEvent('change');
  };
  await page.locator('[data-field=estimate-on]').check();
  await setField('wBits', '7');
  const h7 = await estimateReady(null);
  const tE = Date.now();
  await setField('wBits', '8');
  await estimateReady(h7);
  const estimateSeconds = (Date.now() - tE) / 1000;
  const estText = await page.locator('[data-testid=estimate]').innerText();
  const estImages = Number(await page.locator('[data-testid=estimate]').getAttribute('data-images'));
  const estSplit = JSON.parse(
    (await page.locator('[data-testid=estimate]').getAttribute('data-split')) || '{}',
  ) as Record<string, number>;
  console.log(
    `background estimate W8A8 (statistics cached): ${estimateSeconds.toFixed(1)} s from the change, on ${estImages} images — ${estText.split('\n').find((l) => l.startsWith('Estimate')) ?? ''}`,
  );
  console.log(
    `  in the worker: ${Object.entries(estSplit)
      .map(([k, v]) => `${k} ${v.toFixed(2)} s`)
      .join(', ')}; the rest is the debounce, the weight view and messaging`,
  );
  const record: Record<string, unknown> = {
    instantMs,
    instantRunsMs: instantRuns,
    estimateSeconds,
    estimateImages: estImages,
    estimateSplit: estSplit,
    calib,
    eval: evalN,
    threads,
  };
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify(record, null, 2));
  if (!instantOnly) {
    await page.locator('[data-field=estimate-on]').uncheck();

    const runOnce = async (): Promise<BrowserRun> => {
      const t0 = Date.now();
      await page.locator('[data-testid=run]').click();
      await page.locator('[data-testid=run-panel][data-state=running]').waitFor();
      await page.locator('[data-testid=run-panel][data-state=done]').waitFor({ timeout: 900_000 });
      return {
        wallMs: Date.now() - t0,
        seconds: Number(await page.locator('[data-metric=seconds]').getAttribute('data-seconds')),
        msFirstBatch: Number(await page.locator('[data-testid=engine-used]').getAttribute('data-ms-first-batch')),
        top1: await page.locator('tr[data-row=quant] [data-metric=top1]').innerText(),
      };
    };
    // First visit, fresh profile (no cached crops): a run over prepareN images, cancelled as
    // soon as it leaves the decode stage, so only the preparation is timed.
    let prepared = '';
    if (prepareN > 0) {
      const fresh = await (await browser.newContext()).newPage();
      await fresh.goto(`http://127.0.0.1:${port}/`);
      await fresh.waitForSelector('main[data-ready=true]');
      await fresh.locator('[data-testid=shared-model]', { hasText: 'mobilenetv2-7-fp32.onnx' }).click();
      await fresh.waitForSelector('section[data-state=ready] [data-testid=model-current]');
      await fresh.locator('[data-testid=shared-data]').click();
      await fresh.waitForSelector('section[data-state=ready] [data-testid=data-current]');
      const calibP = Math.min(128, prepareN - 1);
      for (const [f, val] of [
        ['calib', calibP],
        ['eval', prepareN - calibP],
      ] as const) {
        await fresh.locator(`[data-field=${f}]`).fill(String(val));
        await fresh.locator(`[data-field=${f}]`).dispatchEvent('change');
      }
      await fresh.locator('[data-engine=wasm]').check();
      await startStagePoll(fresh);
      await fresh.locator('[data-testid=run]').click();
      await fresh.locator('[data-testid=run-panel][data-state=running]').waitFor();
      const deadline = Date.now() + 1_800_000;
      for (;;) {
        const s = await currentStage(fresh);
        if (
          (s && s !== 'decode' && s !== 'load') ||
          (await fresh.locator('[data-testid=run-panel]').getAttribute('data-state')) !== 'running'
        )
          break;
        if (Date.now() > deadline) throw new Error('Preparing the sample took over 30 minutes; giving up.');
        await fresh.waitForTimeout(100);
      }
      const stages = await stopStagePoll(fresh);
      await fresh
        .locator('[data-testid=cancel]')
        .click()
        .catch(() => undefined);
      const decodeS = stages.decode ?? 0;
      const workers = await fresh.evaluate(() => navigator.hardwareConcurrency);
      prepared = `browser first visit: ${prepareN} images prepared (decode pool, ${workers} cores reported) in ${decodeS.toFixed(1)} s = ${((1000 * decodeS) / prepareN).toFixed(0)} ms per image`;
      await fresh.close();
    }
    const first = await runOnce();
    const cached = await runOnce();

    // Node, the CLI's path: same config, same images, same engine family and threads.
    const modelBytes = new Uint8Array(readFileSync(resolve(SHARED, 'models/mobilenetv2-7-fp32.onnx')));
    const sha = await sha256Hex(modelBytes);
    const dataset = await loadImageFolder(
      resolve(SHARED, 'imagenet-sample'),
      resolve(SHARED, 'imagenet_class_index.json'),
    );
    const engine = await createNodeWasmEngine(threads);
    const cfg = resolveConfig({ model: `sha256:${sha}`, calib, eval: evalN });
    const t0 = performance.now();
    const [node] = await runPipeline([cfg], {
      engine,
      modelBytes,
      model: { id: cfg.model, label: 'mobilenetv2-7-fp32', preprocess: TORCHVISION_SPEC, classes: 1000 },
      dataset,
    });
    const nodeWall = performance.now() - t0;

    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    console.log(
      `\nMobileNet-V2 (shared copy), TensorRT W8A8, ${calib} calibration + ${evalN} evaluation images, wasm ${threads} thread(s)`,
    );
    console.log(
      `browser first run : ${first.seconds.toFixed(1)} s pipeline, ${(first.wallMs / 1000).toFixed(1)} s click-to-result, first batch after ${first.msFirstBatch} ms, quant top-1 ${first.top1}`,
    );
    console.log(
      `browser cached run: ${cached.seconds.toFixed(1)} s pipeline, ${(cached.wallMs / 1000).toFixed(1)} s click-to-result, first batch after ${cached.msFirstBatch} ms`,
    );
    console.log(
      `node (CLI path)   : ${node.seconds.toFixed(1)} s pipeline, ${(nodeWall / 1000).toFixed(1)} s wall (no crop cache), quant top-1 ${pct(node.quant.top1)}`,
    );
    if (prepared) console.log(prepared);
    console.log(
      `browser / node pipeline time: ${(first.seconds / node.seconds).toFixed(2)}×; same top-1: ${first.top1 === pct(node.quant.top1)}`,
    );
    if (jsonFile)
      writeFileSync(
        jsonFile,
        JSON.stringify(
          {
            ...record,
            browserFirstSeconds: first.seconds,
            browserCachedSeconds: cached.seconds,
            nodeSeconds: node.seconds,
          },
          null,
          2,
        ),
      );
  }
} finally {
  await browser.close();
  await server.close();
}
