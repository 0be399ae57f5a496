/**
 * The search for the smallest model within a top-1 budget, and the size-versus-top-1 front,
 * in the BUILT app (Chromium, wasm) on the tiny classifier (tests/support/tiny-qdq.ts) and
 * the shared sample images: from a W3 result, the panel shows its plan in evaluations, runs
 * with progress, shows the outcome (kept layers, size, top-1 against FP32, the ranking) and
 * the front with its FP32 and uniform-preset reference, each point a link that opens its
 * per-layer bits as the settings. A second search is cancelled and says so.
 * Skips with a message when /usr/bin/chromium or ../shared/data is absent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { tinyQdqPair } from '../support/tiny-qdq.ts';
import { ARTIFACTS, launch, runAndWait, setNumber, skipReason, type E2eSession, openOnWasm } from './helpers.ts';

if (skipReason) console.warn(`[e2e search] skipped: ${skipReason}.`);

const { parent } = tinyQdqPair();

describe.skipIf(!!skipReason)('search within a top-1 budget in the app', () => {
  let s: E2eSession;
  let page: Page;
  beforeAll(async () => {
    s = await launch();
    page = await openOnWasm(s);
    await page
      .locator('[data-testid=model-file]')
      .setInputFiles({ name: 'tiny.onnx', mimeType: 'application/octet-stream', buffer: Buffer.from(parent) });
    await page.waitForSelector('section[data-state=ready] [data-testid=model-current]:has-text("tiny.onnx")');
    await page.locator('[data-testid=shared-data]').click();
    await page.waitForSelector('section[data-state=ready] [data-testid=data-current]', { timeout: 60_000 });
    await setNumber(page, 'calib', 8);
    await setNumber(page, 'eval', 24);
    await setNumber(page, 'wBits', 3);
    // the tiny model has two weight layers, the first and the last: both at the preset's bits, so the search can keep either
    await page.locator('[data-field=firstLast8bit]').evaluate((el: HTMLInputElement) => {
      el.checked = false;
      el.dispatchEvent(new Event('change', { bubbles: true }));
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('runs the search and the front from a result; a point opens its settings', async () => {
    await runAndWait(page);
    const panel = page.locator('[data-testid=search-panel]');
    await panel.waitFor();
    expect(await panel.locator('[data-testid=search-max-drop]').inputValue()).toBe('1');
    await panel.locator('[data-testid=search-rank-images]').fill('8');
    await panel.locator('[data-testid=search-with-front]').check();
    await panel.locator('[data-testid=search-bits-4]').uncheck();
    // the plan: 2 weight layers; the front over 2 and 8 bits
    await expect
      .poll(() => panel.locator('[data-testid=search-plan]').innerText())
      .toMatch(/^2 weight layers: .* about 6 \(2 layers ranked one by one.*front at most 12 more/);

    await panel.locator('[data-testid=search-run]').click();
    await panel.locator('[data-testid=search-result], [role=alert]').first().waitFor({ timeout: 300_000 });
    if (await panel.locator('[role=alert]').count())
      throw new Error(`search failed: ${await panel.locator('[role=alert]').innerText()}`);
    expect(await panel.locator('[data-testid=search-verdict]').innerText()).toMatch(
      /layers kept|already meets|not met/,
    );
    expect(await panel.locator('[data-testid=search-top1]').innerText()).toMatch(
      /% \(FP32 [\d.]+%, drop -?[\d.]+ points\)/,
    );
    expect(await panel.locator('[data-testid=search-size]').innerText()).toMatch(/KiB/);
    expect(await panel.locator('[data-testid=search-front-reference]').innerText()).toMatch(
      /FP32 top-1 [\d.]+%; every layer at the preset's 3 bits: top-1 [\d.]+%/,
    );
    await panel.locator('[data-testid=search-front-chart] svg').first().waitFor();
    const rows = panel.locator('[data-testid=search-front-row]');
    expect(await rows.count()).toBeGreaterThanOrEqual(2);
    expect(await panel.locator('[data-testid=search-front-row][data-kind=uniform]').count()).toBe(1);
    // the chart's points are links too (Plot writes xlink:href)
    const anchors = panel.locator('[data-testid=search-front-chart] a');
    expect(await anchors.count()).toBe(await rows.count());
    expect(await anchors.first().evaluate((a) => a.getAttribute('xlink:href') ?? a.getAttribute('href'))).toMatch(
      /^#v=/,
    );
    await panel.screenshot({ path: `${ARTIFACTS}/search-panel.png` });

    // a point opens its per-layer bits as the settings (the link's hash)
    const href = (await rows.first().locator('a').getAttribute('href'))!;
    expect(href).toMatch(/^#/);
    await rows.first().locator('a').click();
    await expect.poll(() => page.evaluate(() => location.hash)).toBe(href);
    expect(await page.locator('[data-field=wBits]').inputValue()).toBe('3');
    await page.locator('[data-testid=results][data-state=empty]').waitFor({ timeout: 30_000 });
  });

  it('cancels a search and says so; the app goes on', async () => {
    await runAndWait(page);
    const panel = page.locator('[data-testid=search-panel]');
    await panel.locator('[data-testid=search-with-front]').check();
    await panel.locator('[data-testid=search-run]').click();
    await panel.locator('[data-testid=search-cancel]').click();
    await panel.locator('[role=alert]').waitFor({ timeout: 120_000 });
    expect(await panel.locator('[role=alert]').innerText()).toMatch(/cancel/i);
    expect(await page.locator('[data-testid=run]').isEnabled()).toBe(true);
  });
});
