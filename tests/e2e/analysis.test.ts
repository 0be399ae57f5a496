/**
 * End-to-end "Why accuracy drops" (issue 4) on the BUILT app in Debian's Chromium: the real
 * MobileNet-V2 from ../shared/data on wasm, TensorRT preset with 4-bit weights and bias
 * correction, 32 calibration / 32 evaluation images, analysis on 16 of them. Checks that
 * the charts render with data, that clicking a bar (and the keyboard list) shows that
 * layer's histograms, that ordering works, and that a reload restores the per-layer rows
 * from IndexedDB. Waits on data-state attributes only. Screenshots go to test-artifacts/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import { ARTIFACTS, launch, loadSharedMobileNet, setNumber, skipReason, type E2eSession, showView } from './helpers.ts';

if (skipReason) console.warn(`[e2e analysis] skipped: ${skipReason}.`);

const pct = async (l: Locator) => Number.parseFloat(await l.innerText());

/** Pixels of the heatmap's raster image: how many are drawn, and how many distinct colours. */
async function heatmapPixels(page: Page): Promise<{ width: number; height: number; drawn: number; colours: number }> {
  return page.locator('[data-testid=drift-heatmap] g.qp-drift-raster image').evaluate(async (img) => {
    const href = img.getAttribute('href') ?? '';
    const im = new Image();
    im.src = href;
    await im.decode();
    const c = document.createElement('canvas');
    c.width = im.naturalWidth;
    c.height = im.naturalHeight;
    const ctx = c.getContext('2d')!;
    ctx.drawImage(im, 0, 0);
    const px = ctx.getImageData(0, 0, c.width, c.height).data;
    let drawn = 0;
    const colours = new Set<number>();
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3] === 0) continue;
      drawn++;
      colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
    }
    return { width: c.width, height: c.height, drawn, colours: colours.size };
  });
}

describe.skipIf(!!skipReason)('why accuracy drops, in the browser (e2e)', () => {
  let s: E2eSession;
  let page: Page;
  let link = '';
  let bars = 0;

  beforeAll(async () => {
    s = await launch();
    page = s.page;
  });
  afterAll(async () => {
    await s?.close();
  });

  it('runs MobileNet-V2 W4 (TensorRT) with bias correction and analysis, and draws the charts', async () => {
    await page.goto(s.base);
    await page.waitForSelector('main[data-ready=true]');
    await loadSharedMobileNet(page);
    await page.locator('[data-field=backend]').selectOption('tensorrt');
    await setNumber(page, 'wBits', 4);
    await setNumber(page, 'calib', 32);
    await setNumber(page, 'eval', 32);
    await page.locator('[data-field=biasCorrection]').check();
    await page.locator('[data-engine=wasm]').check();
    await page.locator('[data-field=analyze]').check();
    await page.locator('[data-field=analysisImages]').fill('16');
    await showView(page, 'analysis');
    await page.locator('[data-testid=analysis][data-state=empty]').waitFor();

    await page.locator('[data-testid=run]').click();
    await page.locator('[data-testid=analysis][data-state=loading]').waitFor();
    await page
      .locator('[data-testid=run-panel][data-state=done], [data-testid=run-panel][data-state=error]')
      .waitFor({ timeout: 540_000 });
    if ((await page.locator('[data-testid=run-panel]').getAttribute('data-state')) === 'error') {
      throw new Error(`run failed: ${await page.locator('[data-testid=run-panel] [role=alert]').innerText()}`);
    }
    const analysis = page.locator('[data-testid=analysis][data-state=ready]');
    await analysis.waitFor();
    link = page.url();
    expect(link).toContain('biasCorrection=1');
    expect(await analysis.getAttribute('data-config-hash')).toBe(
      await page.locator('[data-testid=results]').getAttribute('data-config-hash'),
    );

    // plain numbers: weight-only vs activation-only, and the fix's before/after
    const split = page.locator('[data-testid=split-accuracy]');
    const wOnly = await pct(split.locator('tr[data-row=weight-only] [data-metric=top1]'));
    const aOnly = await pct(split.locator('tr[data-row=activation-only] [data-metric=top1]'));
    const fp32 = await pct(split.locator('tr[data-row=fp32] [data-metric=top1]'));
    expect(fp32).toBeGreaterThan(60);
    // 4-bit weights hurt MobileNet-V2 far more than 8-bit activations
    expect(wOnly).toBeLessThan(aOnly);
    const fix = page.locator('[data-testid=fix-accuracy]');
    const before = await pct(fix.locator('tr[data-row=before] [data-metric=top1]'));
    const after = await pct(fix.locator('tr[data-row=after] [data-metric=top1]'));
    expect(after).toBeGreaterThan(before); // bias correction recovers a large part of W4's loss
    expect(await fix.locator('tr[data-row=before] [data-metric=top1]').innerText()).toBe(
      await page.locator('[data-testid=results] tr[data-row=before] [data-metric=top1]').innerText(),
    );
    expect(await fix.locator('tr[data-row=after] [data-metric=top1]').innerText()).toBe(
      await page.locator('[data-testid=results] tr[data-row=quant] [data-metric=top1]').innerText(),
    );

    // per-layer bar chart: one clickable bar per quantized layer
    const chart = page.locator('[data-testid=layer-chart][data-state=ready]');
    bars = Number(await chart.getAttribute('data-bars'));
    expect(bars).toBeGreaterThanOrEqual(50);
    expect(await page.locator('[data-testid=layer-bars] rect[data-layer]').count()).toBe(bars);
    expect(await page.locator('[data-field=layer] option').count()).toBe(bars + 1);

    // drift heatmap: a raster with one row per layer, drawn in several colours
    const drift = page.locator('[data-testid=drift][data-state=ready]');
    expect(Number(await drift.getAttribute('data-rows'))).toBe(bars);
    expect(Number(await drift.getAttribute('data-cols'))).toBeGreaterThanOrEqual(1000); // the classifier's 1,000 outputs, MobileNet-V2's 1,280 channels
    const px = await heatmapPixels(page);
    expect(px.height).toBe(bars);
    expect(px.drawn).toBeGreaterThan(0.2 * px.width * px.height);
    expect(px.colours).toBeGreaterThan(20);
    expect(await page.locator('[data-testid=drift-bars] rect').count()).toBeGreaterThanOrEqual(2 * bars);

    await page.screenshot({ path: `${ARTIFACTS}/10-analysis.png`, fullPage: true });
    await page.locator('[data-testid=drift]').screenshot({ path: `${ARTIFACTS}/11-drift-heatmap.png` });
  });

  it('clicking a bar shows that layer’s histograms and channel ranges', async () => {
    const detail = page.locator('[data-testid=layer-detail]');
    expect(await detail.getAttribute('data-state')).toBe('empty');
    // the second layer of MobileNet-V2 is its first depthwise conv
    const bar = page.locator('[data-testid=layer-bars] rect[data-layer]').nth(1);
    const name = (await bar.getAttribute('data-layer'))!;
    await bar.click();
    await page
      .locator(`[data-testid=layer-detail][data-state=ready][data-layer="${name}"]`)
      .waitFor({ timeout: 120_000 });
    // the readable name (block and role) with the ONNX node name beside it
    expect(await detail.locator('.layer-name').innerText()).toBe(`block 1 · depthwise 3×3 (${name})`);
    expect(await page.locator('[data-field=layer]').inputValue()).toBe(name);
    expect(await detail.locator('[data-testid=weight-hist] g.qp-fp32-hist rect').count()).toBeGreaterThan(10);
    expect(await detail.locator('[data-testid=weight-hist] g.qp-quant-hist rect').count()).toBeGreaterThan(1);
    expect(await detail.locator('[data-testid=activation-hist] g.qp-act-hist rect').count()).toBeGreaterThan(10);
    const channels = Number(await detail.locator('[data-testid=channel-ranges]').getAttribute('data-channels'));
    expect(channels).toBeGreaterThan(1);
    expect(await detail.locator('[data-testid=channel-ranges] g.qp-channel-ranges line').count()).toBe(channels);
    expect(await detail.locator('[data-metric=vanished]').innerText()).toMatch(new RegExp(`^\\d+ of ${channels}$`));
    await detail.screenshot({ path: `${ARTIFACTS}/12-layer-detail.png` });

    // the keyboard way: pick another layer from the list
    const other = await page.locator('[data-field=layer] option').nth(bars).getAttribute('value');
    expect(other).toBeTruthy();
    await page.locator('[data-field=layer]').selectOption(other!);
    await page
      .locator(`[data-testid=layer-detail][data-state=ready][data-layer="${other}"]`)
      .waitFor({ timeout: 120_000 });
  });

  it('orders the bars worst first for the chosen metric', async () => {
    await page.locator('[data-field=metric]').selectOption('accumulatedSqnr');
    await page.locator('[data-field=order]').selectOption('worst');
    await page.locator('[data-testid=layer-chart][data-metric=accumulatedSqnr][data-order=worst]').waitFor();
    const values = await page
      .locator('[data-testid=layer-bars] rect[data-layer]')
      .evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('data-value'))));
    expect(values.length).toBe(bars);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(values[0]).toBeLessThan(values[values.length - 1]);
    await page.locator('[data-field=order]').selectOption('network');
  });

  it('a reload restores the per-layer analysis from IndexedDB (histograms need a new run)', async () => {
    const p2 = await s.context.newPage();
    await p2.goto(link);
    await p2.waitForSelector('main[data-ready=true]');
    await p2.locator('[data-testid=results][data-state=stored]').waitFor({ timeout: 30_000 });
    await showView(p2, 'analysis');
    await p2.locator('[data-testid=analysis][data-state=ready]').waitFor();
    expect(Number(await p2.locator('[data-testid=layer-chart]').getAttribute('data-bars'))).toBe(bars);
    await p2.locator('[data-testid=layer-bars] rect[data-layer]').nth(1).click();
    await p2.locator('[data-testid=layer-detail][data-state=unavailable]').waitFor({ timeout: 30_000 });
    // per-channel ranges come from the stored rows
    expect(Number(await p2.locator('[data-testid=channel-ranges]').getAttribute('data-channels'))).toBeGreaterThan(1);
    expect(await p2.locator('[data-testid=channel-ranges] g.qp-channel-ranges line').count()).toBeGreaterThan(1);
    await p2.screenshot({ path: `${ARTIFACTS}/13-analysis-restored.png`, fullPage: true });
    await p2.close();
  });

  it('per-tensor int8 weights round whole channels of the first depthwise conv to zero', async () => {
    await page.locator('[data-field=wGranularity]').selectOption('per-tensor');
    await setNumber(page, 'wBits', 8);
    await page.locator('[data-field=biasCorrection]').uncheck();
    await page.locator('[data-testid=analysis][data-state=empty]').waitFor();
    await page.locator('[data-testid=run]').click();
    await page
      .locator('[data-testid=run-panel][data-state=done], [data-testid=run-panel][data-state=error]')
      .waitFor({ timeout: 540_000 });
    expect(await page.locator('[data-testid=run-panel]').getAttribute('data-state')).toBe('done');
    await page.locator('[data-testid=analysis][data-state=ready]').waitFor();
    expect(await page.locator('[data-testid=fix-accuracy]').count()).toBe(0); // no fix, no before/after table

    await page.locator('[data-field=metric]').selectOption('vanished');
    await page.locator('[data-testid=layer-chart][data-metric=vanished]').waitFor();
    const dw = page.locator('[data-testid=layer-bars] rect[data-layer]').nth(1);
    const name = (await dw.getAttribute('data-layer'))!;
    const vanished = Number(await dw.getAttribute('data-value'));
    expect(vanished).toBeGreaterThan(0);
    await dw.click();
    const detail = page.locator(`[data-testid=layer-detail][data-state=ready][data-layer="${name}"]`);
    await detail.waitFor({ timeout: 120_000 });
    const channels = Number(await detail.locator('[data-testid=channel-ranges]').getAttribute('data-channels'));
    expect(await detail.locator('[data-metric=vanished]').innerText()).toBe(`${vanished} of ${channels}`);
    // the chart marks the same channels as rounding to 0 (max |w| ≤ half a step of the one scale)
    expect(
      await detail.locator('[data-testid=channel-ranges] g.qp-channel-ranges line[stroke="#c0262d"]').count(),
    ).toBe(vanished);
    // one scale: the histogram draws the quantization grid
    expect(await detail.locator('[data-testid=weight-hist] svg line').count()).toBeGreaterThan(20);
    await page.locator('[data-testid=analysis]').screenshot({ path: `${ARTIFACTS}/14-per-tensor-vanished.png` });
  });
});
