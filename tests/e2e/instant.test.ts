/**
 * End-to-end instant views (issue 10) on the BUILT app in Debian's Chromium with the real
 * MobileNet-V2 from ../shared/data on wasm and few images: a weight control updates the
 * weight chart with no Run; the background estimate appears, labelled as an estimate with
 * its image count, and is replaced after a newer change; clicking a node of the graph view
 * selects that layer in the weight view; two analysed runs ticked in the history are
 * overlaid. Waits on data-* attributes only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import {
  ARTIFACTS,
  launch,
  loadSharedMobileNet,
  runAndWait,
  setNumber,
  skipReason,
  type E2eSession,
  showView,
  openOnWasm,
} from './helpers.ts';

if (skipReason) console.warn(`[e2e instant] skipped: ${skipReason}.`);

async function barValues(page: Page): Promise<Map<string, number>> {
  const rects = page.locator('[data-testid=weight-bars] rect[data-layer]');
  const vals = await rects.evaluateAll((rs) =>
    rs.map((r) => [r.getAttribute('data-layer')!, Number(r.getAttribute('data-value'))] as const),
  );
  return new Map(vals);
}

describe.skipIf(!!skipReason)('instant views, in the browser (e2e)', () => {
  let s: E2eSession;
  let page: Page;

  beforeAll(async () => {
    s = await launch();
    page = await openOnWasm(s);
    await page.locator('[data-field=backend]').selectOption('tensorrt');
    await setNumber(page, 'calib', 16);
    await setNumber(page, 'eval', 16);
    await page.locator('[data-field=estimate-images]').fill('8');
    await loadSharedMobileNet(page);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('updates the weight chart at once when the weight bits change, with no Run', async () => {
    await showView(page, 'graph');
    const view = page.locator('[data-testid=weight-view][data-state=ready]');
    await view.waitFor({ timeout: 60_000 });
    await page.locator('[data-testid=weight-bars] rect[data-layer]').first().waitFor();
    const before = await barValues(page);
    // one bar per layer with a finite SQNR (an exactly representable layer has +∞ and no bar)
    expect(before.size).toBeGreaterThan(45);
    const version = Number(await view.getAttribute('data-version'));
    await setNumber(page, 'wBits', 4);
    await page.waitForFunction(
      (v) =>
        Number(document.querySelector('[data-testid=weight-view]')?.getAttribute('data-version')) > v &&
        document.querySelector('[data-testid=weight-view]')!.getAttribute('data-key')!.startsWith('[4,'),
      version,
    );
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-testid=weight-bars] rect[data-layer]').length === n,
      53,
    );
    const after = await barValues(page);
    // every layer loses SQNR at 4 bits (about 24 dB less); nothing was run
    let lower = 0;
    for (const [k, v] of after) if (before.has(k) && v < before.get(k)! - 10) lower++;
    expect(lower).toBeGreaterThan(45);
    expect(await page.locator('[data-testid=run-panel]').getAttribute('data-state')).toBe('idle');
    expect(await page.locator('[data-testid=model-size]').innerText()).toMatch(/Model size: .*MB at these bits/);
  });

  it('shows a labelled estimate and replaces it after a newer change', async () => {
    const est = page.locator('[data-testid=estimate][data-state=ready][data-current=true]');
    await est.waitFor({ timeout: 240_000 });
    expect(await est.innerText()).toMatch(/Estimate on 8 images/);
    expect(await est.innerText()).toMatch(/95% interval/);
    const first = await est.getAttribute('data-config-hash');
    await setNumber(page, 'wBits', 6);
    await page.waitForFunction(
      (h) => {
        const e = document.querySelector('[data-testid=estimate]');
        return (
          e?.getAttribute('data-current') === 'true' &&
          e.getAttribute('data-state') === 'ready' &&
          e.getAttribute('data-config-hash') !== h
        );
      },
      first,
      { timeout: 120_000 },
    );
    expect(await page.locator('[data-testid=estimate]').innerText()).toMatch(/calibration statistics reused/);
    expect(await page.locator('[data-testid=run-panel]').getAttribute('data-state')).toBe('idle');
  });

  it('selects a layer by clicking its node in the graph view, in every view', async () => {
    const graph = page.locator('[data-testid=graph-view][data-state=ready]');
    await graph.waitFor();
    const nodes = graph.locator('g.node.layer');
    expect(await nodes.count()).toBe(53);
    const node = graph.locator('g.node.layer[data-layer]').nth(4);
    const id = (await node.getAttribute('data-layer'))!;
    expect((await node.locator('text.l1').textContent())?.trim()).toBe('block 2 · depthwise 3×3');
    await node.click();
    await page.locator(`[data-testid=graph-view][data-selected="${id}"]`).waitFor();
    await page.locator('[data-testid=weight-layer]').waitFor();
    expect(await page.locator('[data-testid=weight-layer]').innerText()).toContain('block 2 · depthwise 3×3');
    await page.locator('[data-testid=instant-weight-hist]').waitFor();
    // the keyboard way: focus another node and press Enter
    const other = graph.locator('g.node.layer[data-layer]').nth(2);
    await other.focus();
    await page.keyboard.press('Enter');
    await page.locator(`[data-testid=graph-view][data-selected="${await other.getAttribute('data-layer')}"]`).waitFor();
    expect(await page.locator('[data-testid=weight-layer]').innerText()).toContain('block 1 · project 1×1');
    await page.screenshot({ path: `${ARTIFACTS}/instant-graph.png`, fullPage: true });
  });

  it('overlays two analysed runs', async () => {
    await page.locator('[data-field=analyze]').check();
    await page.locator('[data-field=analysisImages]').fill('8');
    await runAndWait(page);
    await setNumber(page, 'wBits', 8);
    await runAndWait(page);
    await showView(page, 'history');
    const boxes = page.locator('[data-testid=history] input[type=checkbox]');
    await boxes.nth(0).check();
    await boxes.nth(1).check();
    const ov = page.locator('[data-testid=overlay][data-state=ready]');
    await ov.waitFor({ timeout: 30_000 });
    await page.locator('[data-testid=overlay-chart] g.qp-overlay-line path').first().waitFor();
    expect(await page.locator('[data-testid=overlay-chart] g.qp-overlay-line path').count()).toBe(2);
    await page.locator('[data-testid=overlay-heat-1] g.qp-overlay-heat-1 rect').first().waitFor();
    expect(Number(await ov.getAttribute('data-limit'))).toBeGreaterThan(0);
    await page.screenshot({ path: `${ARTIFACTS}/instant-overlay.png`, fullPage: true });
  });
});
