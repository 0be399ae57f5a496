/**
 * What a stranger gets from a static host, in a fresh Chromium profile: the production
 * build (tests/support/static-hosts.ts, with its `_headers`) whose `site.json` lists the
 * site's own `./mirror/` (the registry's MobileNet-V2 and ImageNet sample, served from
 * ../shared/data as `npm run mirror -- --from` would write them). Nothing is picked by hand:
 * - "Try it" downloads what its first result needs — at most 40 MB beyond the app, counted
 *   from the mirror's requests — and shows a result; its link, reloaded offline, loads the
 *   model and images from this browser and runs again to the same numbers;
 * - a link the CLI wrote (`npm run bench -- --model mobilenet-v2 --data imagenet-sample`,
 *   QP_MIRROR on the same mirror) opens with the model and images loaded and gives the
 *   CLI's exact numbers and config hash;
 * - a lesson opened from the list loads its model and images and runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ARTIFACTS, skipReason } from './helpers.ts';
import {
  chromium,
  cliRun,
  serveSiteWithMirror,
  expectCliNumbers,
  readNumbers,
  runAndWait,
  setNumber,
  UI,
} from './site-helpers.ts';
import type { Host, MirrorContent } from '../support/static-hosts.ts';
import { HAVE_SHARED_DATA } from '../support/shared-data.ts';

if (skipReason) console.warn(`[e2e] skipped: ${skipReason}.`);

/** The budget for Try it's first result, beyond the app and the engine. */
const TRY_IT_BUDGET = 40e6;

describe.skipIf(!!skipReason || !HAVE_SHARED_DATA)('zero set-up on the production build (Chromium)', () => {
  let browser: Browser;
  let host: Host;
  let content: MirrorContent;

  beforeAll(async () => {
    browser = await chromium();
    ({ host, content } = await serveSiteWithMirror());
  });

  afterAll(async () => {
    await browser?.close();
    await host?.close();
  });

  async function open(url: string): Promise<{ context: BrowserContext; page: Page; logs: string[] }> {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
    await page.goto(url);
    await page.waitForSelector(UI.modelFile);
    return { context, page, logs };
  }

  /** Runs `body` on a fresh profile at `url`; on failure prints the page's last console lines. */
  async function inFreshProfile(url: string, body: (context: BrowserContext, page: Page) => Promise<void>) {
    const { context, page, logs } = await open(url);
    try {
      await body(context, page);
    } catch (e) {
      console.log(logs.slice(-30).join('\n'));
      throw e;
    } finally {
      await context.close();
    }
  }

  const numbers = (page: Page) =>
    readNumbers(
      (s) => page.locator(s).first().innerText(),
      (s, n) => page.locator(s).first().getAttribute(n),
    );

  /** Bytes the mirror served since request number `from` (each file counted once). */
  function mirrorBytes(from: number): number {
    const paths = new Set(host.requests.slice(from).filter((p) => p.startsWith('/mirror/')));
    let n = 0;
    for (const p of paths) n += content.get(p.slice('/mirror/'.length))?.body.byteLength ?? 0;
    return n;
  }

  it('Try it gives a first result within 40 MB of downloads; its link reloads offline and runs again', async () => {
    const before = host.requests.length;
    await inFreshProfile(host.url, async (context, page) => {
      await page.locator('[data-testid=try-it]').click();
      await page.locator(UI.runEnded).first().waitFor({ timeout: 540_000 });
      if ((await page.locator('[data-testid=run-panel]').getAttribute('data-state')) === 'error')
        throw new Error(`run failed: ${await page.locator(UI.runError).innerText()}`);
      const online = await numbers(page);
      expect(online.qtop1).toMatch(/\d/);
      const bytes = mirrorBytes(before);
      console.log(`[try-it] ${(bytes / 1e6).toFixed(1)} MB from the mirror; top-1 ${online.qtop1}`);
      expect(bytes).toBeGreaterThan(0);
      expect(bytes).toBeLessThanOrEqual(TRY_IT_BUDGET);
      await page.screenshot({ path: `${ARTIFACTS}/zero-setup-01-try-it.png`, fullPage: true });

      // offline, a fresh load of the same link: model and images from this browser, Run only
      const link = page.url();
      expect(link).toContain('msrc=registry');
      expect(link).toContain('dsrc=registry');
      await context.setOffline(true);
      await page.goto(link);
      await page.waitForSelector(UI.modelReady, { timeout: 120_000 });
      await page.waitForSelector(UI.dataReady, { timeout: 120_000 });
      await runAndWait(page, 540_000);
      const offline = await numbers(page);
      expect(offline).toEqual(online);
    });
  }, 1_200_000);

  it("a link the CLI wrote opens with nothing to pick and gives the CLI's numbers", async () => {
    const rec = await cliRun(`${host.url}mirror/`, ['--backend', 'tensorrt', '--calib', '8', '--eval', '24']);
    expect(rec.url.startsWith('#')).toBe(true);
    await inFreshProfile(`${host.url}${rec.url}`, async (_context, page) => {
      // no click but Run: the registry names in the link load the model and the images
      await page.waitForSelector(UI.modelReady, { timeout: 300_000 });
      await page.waitForSelector(UI.dataReady, { timeout: 300_000 });
      await runAndWait(page, 540_000);
      expectCliNumbers(await numbers(page), rec);
    });
  }, 1_200_000);

  it('a lesson opened from the list loads its model and images: Run is the only click', async () => {
    await inFreshProfile(host.url, async (_context, page) => {
      await page
        .locator('[data-testid=lessons] button', { hasText: /calibration/i })
        .first()
        .click();
      await page.waitForSelector(UI.modelReady, { timeout: 300_000 });
      await page.waitForSelector(UI.dataReady, { timeout: 300_000 });
      // a smaller evaluation split than the lesson's, to keep the suite short
      await setNumber(page, 'eval', 24);
      await runAndWait(page, 540_000);
      expect((await numbers(page)).qtop1).toMatch(/\d/);
    });
  }, 1_200_000);
});
