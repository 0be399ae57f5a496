/**
 * End-to-end: the lessons panel, the introduction's quantization widget and the help
 * toggletips in the BUILT app (vite preview + Chromium). Opens every lesson from the
 * panel and checks the settings and text it shows; moves the widget's controls on the
 * real MobileNet-V2's first convolution; reaches help and the glossary by keyboard.
 * No experiment is run here. Skips when /usr/bin/chromium or ../shared/data is absent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LESSONS } from '../../src/lessons/index.ts';
import { parse, serialize } from '../../src/lib/config/url.ts';
import { launch, loadSharedMobileNet, skipReason as missing, type E2eSession } from './helpers.ts';

if (missing) console.warn(`[e2e] skipped: ${missing}.`);

describe.skipIf(!!missing)('lessons, introduction and help in the browser', () => {
  let s: E2eSession;

  beforeAll(async () => {
    s = await launch();
    await s.page.goto(s.base);
    await s.page.waitForSelector('main[data-ready=true]');
  });
  afterAll(async () => {
    await s?.close();
  });

  it('opens every lesson from the panel: its link becomes the page settings and its text shows beside the controls', async () => {
    const page = s.page;
    for (const l of LESSONS) {
      await page.locator(`[data-testid=lessons] [data-lesson="${l.id}"]`).click();
      await page.locator(`[data-testid=lesson][data-lesson-id="${l.id}"]`).waitFor();
      const p = parse(l.link);
      // the page's link is the lesson's settings, then the model and data keys of a share link
      await expect
        .poll(async () =>
          (await page.locator('[data-testid=hash]').innerText()).startsWith(`#${serialize(p.config, p.hidden)}`),
        )
        .toBe(true);
      expect((await page.evaluate(() => location.hash)).startsWith(`#${l.link}`)).toBe(true);
      expect(await page.locator('[data-testid=lesson-notice]').innerText()).toBe(l.notice);
      expect(await page.locator('[data-testid=notices]').count()).toBe(0);
      // a lesson hides only controls its steps do not use (the placement rules); the history stays
      expect(await page.locator('[data-field="placement.add"]').count()).toBe(0);
      expect(await page.locator('[role=tab][data-view=history]').count()).toBe(1);
      expect(await page.evaluate(() => location.hash)).toMatch(new RegExp(`&lesson=${l.id}(&|$)`));
    }
    expect(
      await page.locator(`[data-testid=lessons] [data-lesson="${LESSONS.at(-1)!.id}"][aria-current=true]`).count(),
    ).toBe(1);
  });

  it('the widget quantizes the first convolution and reacts to bits, range and scale', async () => {
    const page = s.page;
    await loadSharedMobileNet(page);
    const widget = page.locator('[data-testid=quant-widget]');
    await widget.waitFor({ timeout: 60_000 });
    const read = async (m: string) => widget.locator(`[data-metric=${m}]`).innerText();
    const lines = async () => Number(await widget.locator('[data-testid=widget-plot]').getAttribute('data-grid-lines'));
    expect(await widget.locator('figcaption').innerText()).toMatch(/32×3×3×3 = 864 values/);
    // MinMax range at the start: at most the extreme values fall off the grid (the rounded
    // zero point shifts it by under half a step)
    const clipped0 = Number((await read('clipped')).split(' ')[0]);
    expect(clipped0).toBeLessThanOrEqual(2);
    const rounding4 = Number(await read('rounding'));
    expect(await lines()).toBe(16);

    await widget.locator('[data-field=widget-bits]').fill('2');
    await expect.poll(lines).toBe(4);
    expect(Number(await read('rounding'))).toBeGreaterThan(4 * rounding4);

    // narrow the range: values get clipped and clipping error appears
    const hi = widget.locator('[data-field=widget-hi]');
    const max = Number(await hi.getAttribute('max'));
    await hi.fill(String(max / 8));
    await expect.poll(async () => Number((await read('clipped')).split(' ')[0])).toBeGreaterThan(clipped0);
    expect(Number(await read('clipping'))).toBeGreaterThan(0);

    // type a scale and zero point: the grid follows them
    await widget.locator('[data-field=widget-bits]').fill('3');
    await widget.locator('[data-field=widget-scale]').fill('0.5');
    await widget.locator('[data-field=widget-scale]').dispatchEvent('change');
    await widget.locator('[data-field=widget-zp]').fill('3');
    await widget.locator('[data-field=widget-zp]').dispatchEvent('change');
    await expect.poll(async () => (await read('levels')).split(' of ')[1]).toBe('8');
    await widget.locator('[data-field=widget-zp]').fill('9');
    await widget.locator('[data-field=widget-zp]').dispatchEvent('change');
    await expect
      .poll(() => widget.locator('[role=alert]').innerText())
      .toMatch(/zero point must be a whole number from 0 to 7/);
    await s.page.screenshot({ path: 'test-artifacts/intro-widget.png', fullPage: false });
  });

  it('help and the glossary are reachable by keyboard', async () => {
    const page = s.page;
    const help = page.locator('[data-testid=quant-widget] [data-help=sqnr]');
    await help.focus();
    await page.keyboard.press('Enter');
    const text = page.locator('[data-testid=quant-widget] [data-help-text=sqnr]');
    await expect.poll(() => text.isVisible()).toBe(true);
    expect(await help.getAttribute('aria-expanded')).toBe('true');
    expect(await text.innerText()).toMatch(/Signal-to-quantization-noise/);
    await page.keyboard.press('Escape');
    await expect.poll(() => text.isVisible()).toBe(false);
    // open again with Space, then Tab to its "Glossary" button and follow it
    await page.keyboard.press(' ');
    await expect.poll(() => text.isVisible()).toBe(true);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('glossary-sqnr');
    expect(await page.evaluate(() => location.hash.startsWith('#v=1'))).toBe(true);
  });
});
