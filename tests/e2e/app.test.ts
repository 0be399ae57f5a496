/**
 * End-to-end flows of the BUILT app (vite preview, started here on a free port) in
 * Debian's Chromium via playwright-core: real MobileNet-V2 from ../shared/data on wasm,
 * link restore, cancel, and a tiny model on WebGPU (SwiftShader) vs wasm.
 * Waits on data-state attributes only, never on sleeps. Screenshots go to test-artifacts/.
 * Skips with a message when /usr/bin/chromium or ../shared/data is absent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { strFromU8, unzipSync } from 'fflate';
import { parseModel } from '../../src/lib/onnx/model.ts';
import { tinyClassifier } from '../support/tiny-model.ts';
import { CONFIG_FIELDS } from '../../src/lib/config/schema.ts';
import { ARTIFACTS, launch, setNumber, skipReason as missing, type E2eSession, showView } from './helpers.ts';

if (missing) console.warn(`[e2e] skipped: ${missing}.`);

const tinyModel = () => tinyClassifier();

interface Numbers {
  fp32top1: string;
  fp32top5: string;
  qtop1: string;
  qtop5: string;
  agreement: string;
  hash: string;
}

async function readNumbers(page: Page): Promise<Numbers> {
  const t = (sel: string) => page.locator(sel).first().innerText();
  return {
    fp32top1: await t('[data-testid=results] tr[data-row=fp32] [data-metric=top1]'),
    fp32top5: await t('[data-testid=results] tr[data-row=fp32] [data-metric=top5]'),
    qtop1: await t('[data-testid=results] tr[data-row=quant] [data-metric=top1]'),
    qtop5: await t('[data-testid=results] tr[data-row=quant] [data-metric=top5]'),
    agreement: await t('[data-testid=results] [data-metric=agreement]'),
    hash: (await page.locator('[data-testid=results]').getAttribute('data-config-hash')) ?? '',
  };
}

describe.skipIf(!!missing)('the playground in the browser (e2e)', () => {
  let session: E2eSession;
  let context: BrowserContext;
  let page: Page;
  let base = '';

  beforeAll(async () => {
    session = await launch();
    ({ context, page, base } = session);
  });

  afterAll(async () => {
    await session?.close();
  });

  let first: Numbers;
  let link = '';

  it('runs the real MobileNet-V2 on 32 + 64 sample images on wasm', async () => {
    await page.goto(base);
    await page.waitForSelector('main[data-ready=true]');
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    await page.screenshot({ path: `${ARTIFACTS}/01-empty.png`, fullPage: true });

    await page.locator('[data-testid=shared-model]', { hasText: 'mobilenetv2-7-fp32.onnx' }).click();
    await page.waitForSelector('section[data-state=ready] [data-testid=model-current]', { timeout: 60_000 });
    await page.locator('[data-testid=shared-data]').click();
    await page.waitForSelector('section[data-state=ready] [data-testid=data-current]', { timeout: 60_000 });
    expect(await page.locator('[data-testid=data-current]').innerText()).toContain('1000');

    await setNumber(page, 'calib', 32);
    await setNumber(page, 'eval', 64);
    await page.locator('[data-engine=wasm]').check();
    await page.locator('[data-testid=results][data-state=empty]').waitFor();
    await page.locator('[data-testid=run]').click();
    await page.locator('[data-testid=run-panel][data-state=running]').waitFor();
    await page.locator('[data-testid=run-panel] .progress').waitFor();
    await page.screenshot({ path: `${ARTIFACTS}/02-running.png`, fullPage: true });
    await page
      .locator('[data-testid=run-panel][data-state=done], [data-testid=run-panel][data-state=error]')
      .waitFor({ timeout: 540_000 });
    if ((await page.locator('[data-testid=run-panel]').getAttribute('data-state')) === 'error') {
      throw new Error(`run failed: ${await page.locator('[data-testid=run-panel] [role=alert]').innerText()}`);
    }
    await page.locator('[data-testid=results][data-state=fresh]').waitFor();
    first = await readNumbers(page);
    expect(await page.locator('[data-testid=engine-used]').getAttribute('data-engine-kind')).toBe('wasm');
    expect(first.fp32top1).toMatch(/^\d+\.\d%$/);
    expect(Number.parseFloat(first.fp32top1)).toBeGreaterThan(60); // sample top-1 is ~83% for this model
    link = page.url();
    expect(link).toContain('calib=32');
    expect(link).toContain('eval=64');
    await page.screenshot({ path: `${ARTIFACTS}/03-result.png`, fullPage: true });
  });

  it('downloads the result as a deployable zip: QDQ ONNX, ranges.json and the backend file of this run', async () => {
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: 60_000 }),
      page.locator('[data-testid=download-deployable]').click(),
    ]);
    expect(download.suggestedFilename()).toMatch(new RegExp(`^tensorrt-w8a8-${first.hash.slice(0, 8)}\\.zip$`));
    const zip = unzipSync(new Uint8Array(readFileSync(await download.path())));
    const folder = download.suggestedFilename().replace(/\.zip$/, '');
    expect(Object.keys(zip).sort()).toEqual(
      ['README.txt', 'model.int8.onnx', 'model.qdq.onnx', 'ranges.json', 'tensorrt.json'].map((f) => `${folder}/${f}`),
    );
    const ranges = JSON.parse(strFromU8(zip[`${folder}/ranges.json`]));
    expect(ranges.configHash).toBe(first.hash);
    expect(Object.keys(ranges.weights).length).toBeGreaterThan(50); // MobileNet-V2: 52 conv/gemm layers
    const qdq = parseModel(zip[`${folder}/model.qdq.onnx`]);
    expect(qdq.nodes.filter((n) => n.opType === 'QuantizeLinear')).toHaveLength(Object.keys(ranges.activations).length);
    expect(await page.locator('[data-testid=deployable] [role=alert]').count()).toBe(0);
  });

  it('restores config and the stored numbers from the copied link after a reload', async () => {
    const p2 = await context.newPage();
    await p2.goto(link);
    await p2.waitForSelector('main[data-ready=true]');
    await p2.locator('[data-testid=results][data-state=stored]').waitFor({ timeout: 30_000 });
    expect(await p2.locator('[data-field=calib]').inputValue()).toBe('32');
    expect(await p2.locator('[data-field=eval]').inputValue()).toBe('64');
    expect(await readNumbers(p2)).toEqual(first);
    await showView(p2, 'history');
    expect(await p2.locator('[data-testid=history] tbody tr').count()).toBeGreaterThanOrEqual(1);
    await p2.screenshot({ path: `${ARTIFACTS}/04-restored.png`, fullPage: true });
    await p2.close();
  });

  it('cancel mid-run leaves the app usable', async () => {
    await setNumber(page, 'seed', 7);
    await page.locator('[data-testid=results][data-state=empty]').waitFor();
    await page.locator('[data-testid=run]').click();
    await page.locator('[data-testid=run-panel][data-state=running] .progress').waitFor();
    await page.locator('[data-testid=cancel]').click();
    await page.locator('[data-testid=run-panel][data-state=cancelled]').waitFor({ timeout: 120_000 });
    expect(await page.locator('[data-testid=run]').isEnabled()).toBe(true);
    await setNumber(page, 'seed', 0);
    await page.locator('[data-testid=results][data-state=stored]').waitFor();
    expect(await readNumbers(page)).toEqual(first);
  });

  it('a missing model URL gives a clear user error, not a parse failure', async () => {
    const p3 = await context.newPage();
    await p3.goto(base);
    await p3.waitForSelector('main[data-ready=true]');
    // the other ways to load a model are folded away once one is loaded
    if (!(await p3.locator('#model-url').isVisible())) await p3.locator('details:has(#model-url) > summary').click();
    // outside /shared-data/ the preview server's SPA fallback answers index.html with 200
    await p3.locator('#model-url').fill(`${base}models/missing.onnx`);
    await p3.locator('#model-url').press('Enter');
    const err = p3.locator('[role=alert][data-code]').first();
    await err.waitFor();
    expect(await err.getAttribute('data-code')).toBe('MODEL_NOT_ONNX');
    expect(await err.getAttribute('data-kind')).toBe('user');
    expect(await err.innerText()).toMatch(/web page/);
    // inside /shared-data/ a missing file is a real 404
    await p3.locator('#model-url').fill(`${base}shared-data/models/missing.onnx`);
    await p3.locator('#model-url').press('Enter');
    await p3.locator('[role=alert][data-code=MODEL_DOWNLOAD_FAILED]').waitFor();
    expect(await p3.locator('[role=alert][data-code=MODEL_DOWNLOAD_FAILED]').innerText()).toMatch(/404/);
    await p3.screenshot({ path: `${ARTIFACTS}/06-model-error.png`, fullPage: true });
    await p3.close();
  });

  it('a teaching link hides controls and reports unknown keys', async () => {
    const p4 = await context.newPage();
    await p4.goto(`${base}#v=1&backend=openvino&wBits=4&wObserver_hide=1&engine_hide=1&bogus=1`);
    await p4.waitForSelector('main[data-ready=true]');
    expect(await p4.locator('[data-field=wObserver]').count()).toBe(0);
    expect(await p4.locator('[data-engine=wasm]').count()).toBe(0);
    expect(await p4.locator('[data-field=wBits]').inputValue()).toBe('4');
    expect(await p4.locator('[data-testid=notices]').innerText()).toMatch(/unknown setting "bogus"/);
    expect(await p4.locator('section[data-overridden]').getAttribute('data-overridden')).toContain('wBits');
    await p4.close();
  });

  it('renders a control with its help for every config field, the help opening by click and by keyboard', async () => {
    const p5 = await context.newPage();
    // a setting another one makes irrelevant is shown only where it applies (schema usedWhen)
    await p5.goto(`${base}#v=1&backend=academic`);
    await p5.waitForSelector('main[data-ready=true]');
    for (const f of CONFIG_FIELDS.filter((x) => x.group !== 'source' && x.usedWhen))
      expect(await p5.locator(`[data-field="${f.name}"]`).count(), f.name).toBe(0);
    // with equalization on and QDrop, every setting applies
    await p5.goto(`${base}#v=1&backend=academic&cle=1&ptq=qdrop`);
    await p5.reload();
    await p5.waitForSelector('main[data-ready=true]');
    for (const f of CONFIG_FIELDS.filter((x) => x.group !== 'source')) {
      expect(await p5.locator(`[data-field="${f.name}"]`).count(), f.name).toBe(1);
      const text = p5.locator(`[data-help-text="${f.name}"]`);
      expect(await text.isVisible(), f.name).toBe(false);
      const button = p5.locator(`[data-help="${f.name}"]`);
      expect(await button.getAttribute('aria-expanded')).toBe('false');
      await button.click();
      expect(await text.innerText()).toBe(f.help);
      expect(await button.getAttribute('aria-expanded')).toBe('true');
    }
    // keyboard: focus a "?" button and press Enter / Space to toggle
    const wBitsHelp = p5.locator('[data-help="wBits"]');
    await wBitsHelp.focus();
    await p5.keyboard.press('Enter');
    expect(await p5.locator('[data-help-text="wBits"]').isVisible()).toBe(false);
    await p5.keyboard.press('Space');
    expect(await p5.locator('[data-help-text="wBits"]').isVisible()).toBe(true);
    // the backend select still offers every preset and switching applies it
    await p5.locator('[data-field=backend]').selectOption('vitis');
    expect(await p5.locator('[data-field=wPowerOfTwo]').isChecked()).toBe(true);
    expect(p5.url()).toContain('backend=vitis');
    await p5.screenshot({ path: `${ARTIFACTS}/07-config-help.png`, fullPage: true });
    await p5.close();
  });

  it('a tiny model on WebGPU (SwiftShader) agrees with wasm', async () => {
    const gpu = await page.evaluate(async () => {
      const g = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
      return !!(g && (await g.requestAdapter()));
    });
    await page
      .locator('[data-testid=model-file]')
      .setInputFiles({ name: 'tiny.onnx', mimeType: 'application/octet-stream', buffer: Buffer.from(tinyModel()) });
    await page.waitForSelector('section[data-state=ready] [data-testid=model-current]:has-text("tiny.onnx")');
    await setNumber(page, 'calib', 8);
    await setNumber(page, 'eval', 24);
    const runOn = async (engine: 'webgpu' | 'wasm') => {
      await page.locator(`[data-engine=${engine}]`).check();
      await page.locator('[data-testid=run]').click();
      await page.locator('[data-testid=run-panel][data-state=running]').waitFor();
      await page
        .locator('[data-testid=run-panel][data-state=done], [data-testid=run-panel][data-state=error]')
        .waitFor({ timeout: 300_000 });
      expect(await page.locator('[data-testid=run-panel]').getAttribute('data-state')).toBe('done');
      return {
        n: await readNumbers(page),
        kind: await page.locator('[data-testid=engine-used]').getAttribute('data-engine-kind'),
      };
    };
    if (!gpu) {
      console.warn('[e2e] no WebGPU adapter in this Chromium: checking the wasm fallback instead of WebGPU numerics.');
      await page.locator('[data-engine=auto]').check();
      await page.locator('[data-testid=run]').click();
      await page.locator('[data-testid=run-panel][data-state=done]').waitFor({ timeout: 300_000 });
      expect(await page.locator('[data-testid=fallback]').innerText()).toMatch(/wasm/);
      return;
    }
    const g = await runOn('webgpu');
    await page.screenshot({ path: `${ARTIFACTS}/05-webgpu.png`, fullPage: true });
    const w = await runOn('wasm');
    expect(w.kind).toBe('wasm');
    if (g.kind !== 'webgpu')
      console.warn(
        `[e2e] WebGPU run fell back: ${await page
          .locator('[data-testid=fallback]')
          .innerText()
          .catch(() => '?')}`,
      );
    expect(g.n).toEqual(w.n);
  });
});
