/**
 * End-to-end weight rounding (AdaRound / GPTQ / QDrop) on the BUILT app in Debian's Chromium: the
 * real MobileNet-V2 from ../shared/data on wasm, Academic W4A8, few images (the full figures
 * are `npm run bench:ptq`). Checks that the method and its inputs are controls that go into
 * the link, that progress names each layer, that the chart of errors and flips renders, and
 * that Cancel stops AdaRound at a layer boundary with the app still usable, and that QDrop at
 * W4A4 reports per block and shows the activation step sizes it learned.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import {
  ARTIFACTS,
  launch,
  loadSharedMobileNet,
  runAndWait,
  setNumber,
  showView,
  skipReason,
  type E2eSession,
} from './helpers.ts';

if (skipReason) console.warn(`[e2e ptq] skipped: ${skipReason}.`);

/**
 * The distinct progress messages starting with `prefix` that the run panel shows during the
 * next run, resolved when that run ends (the panel still says 'done' from the run before
 * until the next one starts).
 */
function progressMessages(page: Page, prefix: string): Promise<string[]> {
  return page.evaluate(
    (prefix) =>
      new Promise<string[]>((resolve) => {
        const msgs = new Set<string>();
        let started = false;
        const tick = setInterval(() => {
          const m = document.querySelector('[data-testid=run-panel] .progress')?.getAttribute('data-message');
          if (m?.startsWith(prefix)) msgs.add(m);
          const state = document.querySelector('[data-testid=run-panel]')?.getAttribute('data-state');
          started ||= state === 'running';
          if (started && (state === 'done' || state === 'error')) {
            clearInterval(tick);
            resolve([...msgs]);
          }
        }, 20);
      }),
    prefix,
  );
}

describe.skipIf(!!skipReason)('weight rounding in the browser (e2e)', () => {
  let s: E2eSession;
  let page: Page;

  beforeAll(async () => {
    s = await launch();
    page = s.page;
  });
  afterAll(async () => {
    await s?.close();
  });

  it("GPTQ on the quantized model's inputs: per-layer progress, then the chart of errors and flips", async () => {
    await page.goto(s.base);
    await page.waitForSelector('main[data-ready=true]');
    await loadSharedMobileNet(page);
    await page.locator('[data-field=backend]').selectOption('academic');
    await setNumber(page, 'wBits', 4);
    await setNumber(page, 'calib', 8);
    await setNumber(page, 'eval', 16);
    await page.locator('[data-engine=wasm]').check();
    await page.locator('[data-field=ptq]').selectOption('gptq');
    expect(await page.locator('[data-field=ptqInputs]').inputValue()).toBe('quantized-prefix');
    await page.waitForFunction(
      () => location.hash.includes('ptq=gptq') && location.hash.includes('ptqInputs=quantized-prefix'),
    );

    const seen = progressMessages(page, 'GPTQ layer');
    await runAndWait(page);
    const msgs = await seen;
    // one message per layer, numbered over the 51 four-bit layers (first conv and classifier stay 8-bit)
    expect(msgs.length).toBeGreaterThanOrEqual(10);
    expect(msgs.every((m) => /^GPTQ layer \d+\/51: \S+/.test(m))).toBe(true);

    const chart = page.locator('[data-testid=ptq-chart][data-method=gptq]');
    await chart.waitFor();
    expect(Number(await chart.getAttribute('data-layers'))).toBeGreaterThanOrEqual(51);
    await page.locator('[data-testid=ptq-error-chart] svg').first().waitFor();
    await page.locator('[data-testid=ptq-flip-chart] svg').first().waitFor();
    // the flips chart has one bar per reconstructed layer, most of them non-empty
    const heights = await page
      .locator('[data-testid=ptq-flip-chart] svg rect')
      .evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('height') ?? 0)));
    expect(heights.filter((h) => h > 0).length).toBeGreaterThanOrEqual(40);
    await chart.screenshot({ path: `${ARTIFACTS}/20-ptq-chart.png` });
  });

  it('Cancel stops AdaRound at a layer boundary and leaves the app usable', async () => {
    await page.locator('[data-field=ptq]').selectOption('adaround');
    await setNumber(page, 'seed', 3);
    await page.locator('[data-testid=results][data-state=empty]').waitFor();
    // Cancel is clicked from inside the page the moment AdaRound reaches its second layer (the
    // layer messages of a small calibration set last only milliseconds), and the end is timed there
    const ended = page.evaluate(
      () =>
        new Promise<{ layer: string; ms: number; state: string }>((resolve) => {
          const panel = document.querySelector('[data-testid=run-panel]')!;
          let clickedAt = 0;
          let layer = '';
          const obs = new MutationObserver(() => {
            const m = panel.querySelector('.progress')?.getAttribute('data-message') ?? '';
            const k = /^AdaRound layer (\d+)\//.exec(m);
            if (!clickedAt && k && Number(k[1]) >= 2) {
              layer = m;
              clickedAt = performance.now();
              (document.querySelector('[data-testid=cancel]') as HTMLButtonElement).click();
            }
            const state = panel.getAttribute('data-state') ?? '';
            if (clickedAt && (state === 'cancelled' || state === 'done' || state === 'error')) {
              obs.disconnect();
              resolve({ layer, ms: performance.now() - clickedAt, state });
            }
          });
          obs.observe(panel, { subtree: true, attributes: true, childList: true });
        }),
    );
    await page.locator('[data-testid=run]').click();
    const end = await ended;
    expect(end.state).toBe('cancelled');
    expect(end.layer).toMatch(/^AdaRound layer \d+\/51: \S+/);
    // one layer's solve is the longest wait (the 1×1 convs of this size take well under 10 s)
    expect(end.ms).toBeLessThan(20_000);
    expect(await page.locator('[data-testid=run]').isEnabled()).toBe(true);
    expect(await page.locator('[data-testid=results][data-state=empty]').count()).toBe(1);
  });

  // the bug the one pipeline loop fixed: with the analysis ticked, AdaRound and GPTQ ended in
  // "the pipeline was started without the reconstruction stage … INTERNAL"
  for (const method of ['adaround', 'gptq'] as const) {
    it(`Analyze with ${method === 'adaround' ? 'AdaRound' : 'GPTQ'}: the run and its per-layer analysis of the rounded model`, async () => {
      await page.locator('[data-field=ptq]').selectOption(method);
      if (method === 'adaround') await setNumber(page, 'ptqIters', 20);
      await setNumber(page, 'seed', method === 'adaround' ? 4 : 5);
      const analyze = page.locator('[data-field=analyze]');
      if (!(await analyze.isChecked())) await analyze.check();
      await page.locator('[data-field=analysisImages]').fill('8');
      await runAndWait(page);
      expect(page.url()).toContain(`ptq=${method}`);
      await showView(page, 'analysis');
      const analysis = page.locator('[data-testid=analysis][data-state=ready]');
      await analysis.waitFor({ timeout: 120_000 });
      expect(await analysis.getAttribute('data-config-hash')).toBe(
        await page.locator('[data-testid=results]').getAttribute('data-config-hash'),
      );
      expect(await page.locator('[role=alert][data-code=INTERNAL]').count()).toBe(0);
      await showView(page, 'learn');
    });
  }
  // the low-bit frontier in the browser: block reconstruction with learned activation step
  // sizes on the engine's gradient graphs (few steps here; the figures are `npm run bench:ptq`)
  it('QDrop at W4A4: per-block progress, the error chart per block and the learned activation step sizes', async () => {
    await page.locator('[data-field=ptq]').selectOption('qdrop');
    const analyze = page.locator('[data-field=analyze]');
    if (await analyze.isChecked()) await analyze.uncheck();
    await setNumber(page, 'aBits', 4);
    await setNumber(page, 'ptqIters', 10);
    await setNumber(page, 'seed', 6);
    expect(await page.locator('[data-field=ptqActRanges]').inputValue()).toBe('auto');
    await page.waitForFunction(() => location.hash.includes('ptq=qdrop'));
    const seen = progressMessages(page, 'QDrop ');
    await runAndWait(page);
    const msgs = await seen;
    // one message per block at least, each naming the block and counting over the trainable ones
    const blocks = new Set(msgs.map((m) => /^QDrop (\d+)\/(\d+): /.exec(m)?.[1]).filter(Boolean));
    expect(blocks.size, msgs.join('\n')).toBeGreaterThanOrEqual(5);
    expect(msgs.some((m) => /^QDrop \d+\/\d+: \S+, step 10\/10$/.test(m))).toBe(true);

    const chart = page.locator('[data-testid=ptq-chart][data-method=qdrop][data-unit=block]');
    await chart.waitFor();
    expect(Number(await chart.getAttribute('data-layers'))).toBeGreaterThanOrEqual(10);
    await page.locator('[data-testid=ptq-error-chart] svg').first().waitFor();
    // every 4-bit activation point learned a step size, and ten steps of LSQ move some of them
    const steps = page.locator('[data-testid=ptq-steps]');
    await steps.waitFor();
    expect(Number(await steps.getAttribute('data-points'))).toBeGreaterThanOrEqual(10);
    expect(Number(await steps.getAttribute('data-moved'))).toBeGreaterThan(0);
    await page.locator('[data-testid=ptq-steps-chart] svg').first().waitFor();
    await steps.screenshot({ path: `${ARTIFACTS}/21-ptq-steps.png` });
  });
});
