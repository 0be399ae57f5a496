/**
 * The README's first command on a machine without ../shared: the dev server (Vite, as
 * `npm run dev` starts it) with no shared data (QP_SHARED_DATA naming a missing folder) and
 * QP_MIRROR naming a mirror (a local server playing the public sources: nothing here reaches
 * the internet). "Try it" must load the registry's MobileNet-V2 and ImageNet sample through
 * the mirror and give a result, with nothing picked by hand.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { ROOT, skipReason } from './helpers.ts';
import { chromium, SHARED, UI } from './site-helpers.ts';
import { serveMirror, type Host } from '../support/static-hosts.ts';
import { HAVE_SHARED_DATA } from '../support/shared-data.ts';

if (skipReason) console.warn(`[e2e] skipped: ${skipReason}.`);

describe.skipIf(!!skipReason || !HAVE_SHARED_DATA)('the dev server without ../shared (QP_MIRROR)', () => {
  let mirror: Host;
  let server: ViteDevServer;
  let browser: Browser;
  const saved = { data: process.env.QP_SHARED_DATA, mirror: process.env.QP_MIRROR };

  beforeAll(async () => {
    mirror = await serveMirror({ shared: SHARED });
    // vite.config.ts reads both when the server loads it
    process.env.QP_SHARED_DATA = `${ROOT}/no-such-shared-data`;
    process.env.QP_MIRROR = mirror.url;
    const { createServer } = await import('vite');
    server = await createServer({
      root: ROOT,
      configFile: `${ROOT}/vite.config.ts`,
      logLevel: 'warn',
      server: { port: 0, host: '127.0.0.1', strictPort: false },
    });
    await server.listen();
    browser = await chromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await mirror?.close();
    for (const [k, v] of [
      ['QP_SHARED_DATA', saved.data],
      ['QP_MIRROR', saved.mirror],
    ] as const)
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  });

  it('"Try it" gives a result from the mirror, with no shared data on the server', async () => {
    const url = server.resolvedUrls!.local[0];
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
    // the dev server must not reload the page under the run (re-optimizing dependencies it
    // first meets when the worker starts would)
    let loads = 0;
    page.on('load', () => loads++);
    try {
      await page.goto(url);
      await page.waitForSelector('main[data-ready=true]', { timeout: 120_000 });
      // the server has no shared data: its folder is not offered
      expect(await page.locator('[data-testid=shared-data]').count()).toBe(0);
      await page.locator('[data-testid=try-it]').click();
      await page.locator(UI.runEnded).first().waitFor({ timeout: 540_000 });
      if ((await page.locator('[data-testid=run-panel]').getAttribute('data-state')) === 'error')
        throw new Error(`run failed: ${await page.locator(UI.runError).innerText()}`);
      const top1 = await page.locator(UI.metric('quant', 'top1')).first().innerText();
      console.log(`[e2e dev server] Try it from QP_MIRROR: top-1 ${top1}`);
      expect(top1).toMatch(/\d/);
      expect(page.url()).toContain('msrc=registry');
      expect(page.url()).toContain('dsrc=registry');
      expect(mirror.requests.some((p) => p.startsWith('/models/'))).toBe(true);
      expect(mirror.requests.some((p) => p.startsWith('/imagenet-sample/'))).toBe(true);
      expect(loads).toBe(1);
    } catch (e) {
      console.log(logs.slice(-30).join('\n'));
      console.log(`page loads: ${loads}; the page says:\n${(await page.locator('main').innerText()).slice(0, 3000)}`);
      throw e;
    } finally {
      await page.close();
    }
  }, 900_000);
});
