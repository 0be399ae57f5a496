/**
 * The production build in Debian's Firefox ESR, driven over WebDriver BiDi with
 * puppeteer-core (never a downloaded browser): on a static host with the headers of
 * `_headers` it is cross-origin isolated, runs the tiny model on images from the site's
 * own mirror with the same numbers as Chromium, and reloads from its service worker when
 * the host is gone; a link the CLI wrote (registry MobileNet-V2 and ImageNet sample, the
 * site's `site.json` listing its `./mirror/`) needs no click but Run and gives the CLI's
 * numbers. Skips with a message when /usr/bin/firefox-esr is absent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import type { Browser as PBrowser, Page as PPage } from 'puppeteer-core';
import { ARTIFACTS, skipReason } from './helpers.ts';
import {
  chromium,
  cliRun,
  serveSiteWithMirror,
  expectCliNumbers,
  FIREFOX,
  readNumbers,
  tinyRunInChromium,
  UI,
  type Numbers,
} from './site-helpers.ts';
import type { Host } from '../support/static-hosts.ts';
import { tinyClassifier } from '../support/tiny-model.ts';
import { ENGINE_CACHE } from '../../src/lib/offline/engine-cache.ts';

const missing = skipReason || (existsSync(FIREFOX) ? '' : `${FIREFOX} is not installed (apt-get install firefox-esr)`);
if (missing) console.warn(`[e2e firefox] skipped: ${missing}.`);

/** Puppeteer: a number field set and committed (the fields apply on change). */
async function setNumber(page: PPage, field: string, v: number): Promise<void> {
  await page.$eval(
    `[data-field="${field}"]`,
    (el, value) => {
      const input = el as HTMLInputElement;
      input.value = value;
      input.dispatchEvent(new Event('input', { bubbles: true }));
      input.dispatchEvent(new Event('change', { bubbles: true }));
    },
    String(v),
  );
}

async function textOf(page: PPage, sel: string): Promise<string> {
  return page.$eval(sel, (el) => (el as HTMLElement).innerText);
}

async function tinyRunInFirefox(page: PPage, site: string): Promise<Numbers> {
  const file = join(mkdtempSync(join(tmpdir(), 'qp-ff-')), 'tiny.onnx');
  writeFileSync(file, tinyClassifier());
  const input = await page.$(UI.modelFile);
  await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(file);
  await page.waitForFunction(
    (sel) => document.querySelector(sel)?.textContent?.includes('tiny.onnx'),
    { timeout: 60_000 },
    UI.modelReady,
  );
  await page.$eval(
    UI.dataUrl,
    (el, url) => {
      const i = el as HTMLInputElement;
      i.value = url;
      i.dispatchEvent(new Event('input', { bubbles: true }));
    },
    `${site}mirror/imagenet-sample/`,
  );
  await page.click(UI.dataUrlSubmit);
  await page.waitForSelector(UI.dataReady, { timeout: 60_000 });
  await setNumber(page, 'calib', 8);
  await setNumber(page, 'eval', 24);
  await page.click(UI.wasm);
  await page.click(UI.run);
  await page.waitForSelector(UI.runEnded, { timeout: 300_000 });
  const state = await page.$eval('[data-testid=run-panel]', (el) => el.getAttribute('data-state'));
  if (state !== 'done') throw new Error(`run failed in Firefox: ${await textOf(page, UI.runError)}`);
  return readNumbers(
    (s) => textOf(page, s),
    (s, n) => page.$eval(s, (el, name) => el.getAttribute(name), n),
  );
}

describe.skipIf(!!missing)('the production build in Firefox ESR (WebDriver BiDi)', () => {
  let host: Host;
  let firefox: PBrowser;

  beforeAll(async () => {
    ({ host } = await serveSiteWithMirror());
    const puppeteer = await import('puppeteer-core');
    firefox = await puppeteer.launch({
      browser: 'firefox',
      executablePath: FIREFOX,
      headless: true,
      protocol: 'webDriverBiDi',
      // waits of up to 9 minutes below are one protocol call each: the default 180 s would cut them
      protocolTimeout: 600_000,
    });
  });

  afterAll(async () => {
    await firefox?.close();
    await host?.close();
  });

  // before the reload test below, which takes the host away
  it("a link the CLI wrote needs no click but Run and gives the CLI's numbers", async () => {
    const rec = await cliRun(`${host.url}mirror/`, ['--backend', 'tensorrt', '--calib', '8', '--eval', '16']);
    const page = await firefox.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
    try {
      await page.goto(`${host.url}${rec.url}`);
      await page.waitForSelector(UI.modelReady, { timeout: 300_000 });
      await page.waitForSelector(UI.dataReady, { timeout: 300_000 });
      await page.click(UI.run);
      await page.waitForSelector(UI.runEnded, { timeout: 540_000 });
      const state = await page.$eval('[data-testid=run-panel]', (el) => el.getAttribute('data-state'));
      if (state !== 'done') throw new Error(`run failed in Firefox: ${await textOf(page, UI.runError)}`);
      const got = await readNumbers(
        (s) => textOf(page, s),
        (s, n) => page.$eval(s, (el, name) => el.getAttribute(name), n),
      );
      console.log(`[e2e firefox] CLI link: ${JSON.stringify(got)}`);
      expectCliNumbers(got, rec);
    } catch (e) {
      console.log(logs.slice(-30).join('\n'));
      throw e;
    } finally {
      await page.close().catch(() => undefined);
    }
  }, 1_200_000);

  it('is cross-origin isolated, runs the tiny model with the numbers of Chromium, and reloads from its cache', async () => {
    const page = await firefox.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
    try {
      await page.goto(host.url);
      await page.waitForSelector(UI.modelFile);
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
      const ff = await tinyRunInFirefox(page, host.url);
      await page.screenshot({ path: `${ARTIFACTS}/site-03-firefox.png`, fullPage: true });

      const chrome = await chromium();
      let cr: Numbers;
      try {
        const cp = await chrome.newPage();
        await cp.goto(host.url);
        await cp.waitForSelector(UI.modelFile);
        cr = await tinyRunInChromium(cp, host.url);
      } finally {
        await chrome.close();
      }
      console.log(`[e2e firefox] Firefox ${JSON.stringify(ff)}; Chromium ${JSON.stringify(cr)}`);
      expect(ff.configHash).toMatch(/^[0-9a-f]+$/);
      expect(ff).toEqual(cr);
      // Firefox ESR has no WebGPU: its service worker holds the plain wasm build only
      const kept = await page.evaluate(
        async (name) => (await (await caches.open(name)).keys()).map((r) => new URL(r.url).pathname),
        ENGINE_CACHE,
      );
      expect(kept).toEqual([expect.stringMatching(/^\/assets\/ort-wasm-simd-threaded-[\w-]+\.wasm$/)]);

      // the host goes away: the page reloads from the service worker's cache
      await page.evaluate(async () => void (await navigator.serviceWorker.ready));
      await host.close();
      await page.goto(host.url);
      await page.waitForSelector(UI.modelFile, { timeout: 30_000 });
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    } catch (e) {
      console.log(logs.slice(-30).join('\n'));
      throw e;
    } finally {
      await page.close().catch(() => undefined);
    }
  });
});
