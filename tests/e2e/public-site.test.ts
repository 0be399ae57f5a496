/**
 * The production build on plain static hosts (tests/support/static-hosts.ts, not Vite) in
 * Debian's Chromium: with the headers of its `_headers` it is cross-origin isolated and
 * runs an experiment on images from its own `./mirror/`; its Workbox service worker caches
 * the app and the one engine binary this browser loads, so an offline reload still loads and runs; on a host without
 * headers it runs on one thread and says so; the downloader, in the page under the real
 * policy, names "the site's policy" for an http mirror the policy does not list, works
 * once `npm run site` lists it (through the service worker, verified), and names a damaged
 * file, a missing one and a host without CORS headers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ROOT, skipReason } from './helpers.ts';
import {
  buildProbe,
  chromium,
  tinyRunInChromium,
  DIST,
  ensureBuild,
  probeRoute,
  runAndWait,
  sampleFiles,
  setNumber,
  SHARED,
  UI,
} from './site-helpers.ts';
import { mirrorContent, mirrorRoute, serveMirror, serveSite, type Host } from '../support/static-hosts.ts';
import { tinyClassifier } from '../support/tiny-model.ts';
import { contentSecurityPolicy, headersFor } from '../../security-headers.ts';
import { updateSite } from '../../src/cli/site.ts';
import type { WantedFile } from '../../src/lib/data/downloads.ts';
import type { ProbeResult } from './probe/downloads-probe.ts';
import { ARTIFACTS } from './helpers.ts';
import { ENGINE_CACHE, ENGINE_KEEPER_FILE } from '../../src/lib/offline/engine-cache.ts';

if (skipReason) console.warn(`[e2e] skipped: ${skipReason}.`);

const DAMAGED = 'n01443537_goldfish.JPEG';
const MISSING = 'n01484850_great_white_shark.JPEG';

/** Runs the app's downloader in the page (the probe module). */
async function probe(page: Page, wants: WantedFile[], useMeta = true): Promise<ProbeResult> {
  // a string, so the test runner does not rewrite the page's import()
  const args = JSON.stringify([wants, { useMeta }]);
  return page.evaluate(`import('/__probe/probe.js').then((m) => m.download(...${args}))`) as Promise<ProbeResult>;
}

describe.skipIf(!!skipReason)('the production build on a static host (Chromium)', () => {
  let browser: Browser;
  let mirror: Host;
  let probeDir = '';
  const hosts: Host[] = [];
  let wants: (names: string[], base: string) => WantedFile[];

  beforeAll(async () => {
    ensureBuild();
    probeDir = await buildProbe();
    browser = await chromium();
    mirror = await serveMirror({ shared: SHARED, damaged: [DAMAGED], missing: [MISSING] });
    hosts.push(mirror);
    const content = await mirrorContent({ shared: SHARED });
    wants = (names, base) =>
      names.map((n) => {
        const f = content.files.find((x) => x.file === n)!;
        return {
          name: f.file,
          bytes: f.bytes,
          sha256: f.sha256,
          urls: [`${base}imagenet-sample/${encodeURIComponent(f.file)}`],
        };
      });
  });

  afterAll(async () => {
    await browser?.close();
    for (const h of hosts) await h.close();
  });

  /** The built site at a host, with its own mirror at ./mirror/ and the probe. */
  async function site(dir: string, headers = true): Promise<Host> {
    const content = await mirrorContent({ shared: SHARED });
    const inner = mirrorRoute(content, '/mirror/');
    const pr = probeRoute(probeDir);
    const h = await serveSite(dir, { headers, extra: (req, res, path) => pr(req, res, path) || inner(req, res, path) });
    hosts.push(h);
    return h;
  }

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

  it('loads with the headers of _headers, registers its service worker, runs, and reloads offline', async () => {
    const host = await site(DIST);
    const { context, page, logs } = await open(host.url);
    try {
      const headers = headersFor(readFileSync(join(DIST, '_headers'), 'utf8'), '/');
      // a first install must not claim open pages: in Firefox ESR a claim while a run was
      // starting its engine hung the page (vite.config.ts, docs/hosting.md)
      expect(readFileSync(join(DIST, 'sw.js'), 'utf8')).not.toMatch(/clientsClaim\(\)/);
      expect(headers['Content-Security-Policy']).toBe(contentSecurityPolicy());
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
      const meta = await page.evaluate(() =>
        document.querySelector('meta[http-equiv="Content-Security-Policy"]')?.getAttribute('content'),
      );
      expect(meta).toBe(contentSecurityPolicy({ meta: true }));
      // the service worker installs (precaching the app and the engine) and activates
      const sw = await page.evaluate(async () => {
        const reg = await navigator.serviceWorker.ready;
        // ready resolves once a worker is active, which may still be 'activating'
        const w = reg.active!;
        if (w.state !== 'activated')
          await new Promise<void>((r) => w.addEventListener('statechange', () => w.state === 'activated' && r()));
        const keys = await caches.keys();
        const precache = await caches.open(keys.find((k) => k.includes('precache'))!);
        const urls = (await precache.keys()).map((r) => new URL(r.url).pathname);
        return { state: reg.active?.state, urls };
      });
      expect(sw.state).toBe('activated');
      expect(sw.urls.some((u) => /ort\.webgpu\.bundle\.min-.*\.js/.test(u))).toBe(true);
      expect(sw.urls).toContain('/index.html');
      expect(sw.urls.some((u) => u.startsWith('/mirror/'))).toBe(false);
      // neither engine binary is precached; the installed worker holds the one this browser
      // loads (no WebGPU adapter here: the plain wasm build) before anything runs
      expect(sw.urls.filter((u) => /ort-wasm/.test(u))).toEqual([]);
      expect(sw.urls.some((u) => /mozjpeg_dec-.*\.wasm$/.test(u))).toBe(true); // the JPEG decoder is
      const kept = await page.evaluate(
        async (name) => (await (await caches.open(name)).keys()).map((r) => new URL(r.url).pathname),
        ENGINE_CACHE,
      );
      expect(kept).toHaveLength(1);
      expect(kept[0]).toMatch(/^\/assets\/ort-wasm-simd-threaded-[\w-]+\.wasm$/);

      const online = await tinyRunInChromium(page, host.url);
      expect(online.fp32top1).toMatch(/\d/);
      await page.screenshot({ path: `${ARTIFACTS}/site-01-online.png`, fullPage: true });

      // offline: the reload comes from the service worker, headers and all
      const before = host.requests.length;
      await context.setOffline(true);
      // the bare address (the link in the hash names the mirror's images, which need the network)
      await page.goto(host.url);
      await page.waitForSelector(UI.modelFile);
      expect(await page.evaluate(() => navigator.onLine)).toBe(false);
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
      // the engine runs offline: the tiny model and picked images (local files need no network)
      await page.locator(UI.modelFile).setInputFiles({
        name: 'tiny.onnx',
        mimeType: 'application/octet-stream',
        buffer: Buffer.from(tinyClassifier()),
      });
      await page.waitForSelector(`${UI.modelReady}:has-text("tiny.onnx")`, { timeout: 60_000 });
      await page.locator(UI.pickImages).first().setInputFiles(sampleFiles(40));
      await page.waitForSelector(UI.dataReady, { timeout: 60_000 });
      await setNumber(page, 'calib', 8);
      await setNumber(page, 'eval', 24);
      await page.locator(UI.wasm).check();
      await runAndWait(page);
      expect(await page.locator(UI.metric('quant', 'top1')).first().innerText()).toMatch(/\d/);
      await page.screenshot({ path: `${ARTIFACTS}/site-02-offline.png`, fullPage: true });
      // nothing the app needs reached the host; the browser's own update check of the service
      // worker (sw.js and the scripts it imports: the Workbox runtime, the engine keeper) is
      // not held back by the emulation
      const updateCheck = (p: string) => /^\/(sw|workbox-[0-9a-f]+)\.js$/.test(p) || p === `/${ENGINE_KEEPER_FILE}`;
      expect(host.requests.slice(before).filter((p) => !updateCheck(p))).toEqual([]);
    } catch (e) {
      console.log(logs.slice(-30).join('\n'));
      throw e;
    } finally {
      await context.close();
    }
  });

  it('on a host without headers: not cross-origin isolated, one thread, and the page says so', async () => {
    const host = await site(DIST, false);
    const { context, page } = await open(host.url);
    try {
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(false);
      const line = page.locator('[data-testid=run-panel] p.muted.small').first();
      await line.filter({ hasNotText: 'Checking the engines' }).waitFor();
      expect(await line.innerText()).toContain('wasm: 1 thread (page not cross-origin isolated)');
      // the meta policy still guards the page: an unlisted http mirror is refused
      const r = await probe(page, wants(['n01440764_tench.JPEG'], mirror.url));
      expect(r.ok).toBe(false);
      expect(r.causes).toEqual(['policy']);
    } finally {
      await context.close();
    }
  });

  it('under a sub-path without headers, as GitHub Pages serves a project site: loads, caches, runs on one thread', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qp-pages-'));
    execFileSync('npx', ['vite', 'build', '--base', '/qp/', '--outDir', dir, '--logLevel', 'warn'], {
      cwd: ROOT,
      stdio: 'inherit',
    });
    const content = await mirrorContent({ shared: SHARED });
    const host = await serveSite(dir, { headers: false, prefix: '/qp/', extra: mirrorRoute(content, '/qp/mirror/') });
    hosts.push(host);
    const { context, page, logs } = await open(`${host.url}qp/`);
    try {
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(false);
      const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
      expect(scope).toBe(`${host.url}qp/`);
      const n = await tinyRunInChromium(page, `${host.url}qp/`);
      expect(n.agreement).toMatch(/%/);
      expect(await page.locator('[data-testid=run-panel] p.muted.small').first().innerText()).toContain('1 thread');
      // nothing outside the site's path but the worker's probe for the dev server's sample
      // (workers/api.ts SHARED_DATA is absolute; on a real Pages site it is one 404)
      expect(host.requests.filter((p) => !p.startsWith('/qp/'))).toEqual([
        '/shared-data/imagenet-sample/manifest.json',
      ]);
    } catch (e) {
      console.log(logs.slice(-30).join('\n'));
      throw e;
    } finally {
      await context.close();
    }
  });

  it("an http mirror the policy does not list: the site's policy is named (by connect-src and by the violation event)", async () => {
    const host = await site(DIST);
    const { context, page } = await open(host.url);
    try {
      const r = await probe(page, wants(['n01440764_tench.JPEG'], mirror.url));
      expect(r).toMatchObject({ ok: false, code: 'DOWNLOAD_BLOCKED', causes: ['policy'] });
      expect(r.message).toContain(`the download from ${mirror.origin} was blocked by the site's policy`);
      // without reading the meta policy, the securitypolicyviolation event says the same
      const ev = await probe(page, wants(['n01440764_tench.JPEG'], mirror.url), false);
      expect(ev.causes).toEqual(['policy']);
      expect(ev.message).toContain("blocked by the site's policy");
      expect(mirror.requests.filter((p) => p.includes('tench'))).toEqual([]); // never sent
    } finally {
      await context.close();
    }
  });

  it('listed by `npm run site` on a live site: a visitor gets the new policy with the update, then downloads verify through the service worker; a damaged, a missing file and a host without CORS are named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qp-dist-'));
    cpSync(DIST, dir, { recursive: true });
    const noCors = await serveMirror({ shared: SHARED, cors: false });
    hosts.push(noCors);
    const host = await site(dir);
    const { context, page } = await open(host.url);
    try {
      // a visitor of the site as built: the service worker controls the page, the mirror is refused
      await page.evaluate(() => navigator.serviceWorker.ready);
      await page.reload();
      await page.waitForSelector(UI.modelFile);
      expect((await probe(page, wants(['n01440764_tench.JPEG'], mirror.url))).causes).toEqual(['policy']);

      // the teacher lists the mirror on the live site
      const up = await updateSite(dir, [mirror.url, noCors.url]);
      expect(up.connect).toEqual([mirror.origin, noCors.origin]);
      expect(up.changed.sort()).toEqual(['_headers', 'index.html', 'site.json', 'sw.js']);
      expect(headersFor(readFileSync(join(dir, '_headers'), 'utf8'), '/')['Content-Security-Policy']).toContain(
        mirror.origin,
      );
      // the next online visit finds the new version; it waits for the user (registerType 'prompt')
      await page.reload();
      await page.waitForSelector(UI.modelFile);
      const waiting = await page.evaluate(async () => {
        for (let i = 0; i < 300; i++) {
          if ((await navigator.serviceWorker.getRegistration())?.waiting) return true;
          await new Promise((r) => setTimeout(r, 100));
        }
        return false;
      });
      expect(waiting).toBe(true);
      expect((await probe(page, wants(['n01440764_tench.JPEG'], mirror.url))).causes).toEqual(['policy']);
      // the page says so; its button activates the new worker and the app reloads itself (a
      // reload of our own here would race the app's and be aborted)
      const notice = page.locator('[data-testid=update-notice]');
      await notice.waitFor();
      const reloaded = page.waitForEvent('load');
      await notice.getByRole('button', { name: 'Reload to use it' }).click();
      await reloaded;
      await page.waitForSelector(UI.modelFile);
      const meta = await page.evaluate(() =>
        document.querySelector('meta[http-equiv="Content-Security-Policy"]')?.getAttribute('content'),
      );
      expect(meta).toContain(mirror.origin);
      const good = ['n01440764_tench.JPEG', "n03590841_jack-o'-lantern.JPEG", 'n15075141_toilet_tissue.JPEG'];
      const ok = await probe(page, wants(good, mirror.url));
      expect(ok.controlled).toBe(true);
      expect(ok).toMatchObject({ ok: true });
      expect(ok.sizes).toEqual(wants(good, mirror.url).map((w) => w.bytes));

      const bad = await probe(page, wants([DAMAGED], mirror.url));
      expect(bad).toMatchObject({ ok: false, code: 'DATA_SHA_MISMATCH', causes: ['sha256'] });
      const want = wants([DAMAGED], mirror.url)[0].sha256;
      expect(bad.message).toMatch(new RegExp(`sent a file whose sha256 is [0-9a-f]{64}, not the expected ${want}`));

      const missing = await probe(page, wants([MISSING], mirror.url));
      expect(missing).toMatchObject({ ok: false, code: 'DATA_NOT_FOUND', causes: ['not-found'] });
      expect(missing.message).toContain('was not found (404)');

      const cors = await probe(page, wants(['n01440764_tench.JPEG'], noCors.url));
      expect(cors.causes).toEqual(['cors']);
      expect(cors.message).toContain(`${noCors.origin} answered without a CORS header (Access-Control-Allow-Origin)`);

      // fallback: the missing file from the first mirror, then from the site's own mirror
      const w = wants([MISSING], mirror.url)[0];
      const fb = await probe(page, [{ ...w, urls: [...w.urls, `${host.url}mirror/imagenet-sample/${w.name}`] }]);
      expect(fb).toMatchObject({ ok: true, sizes: [w.bytes] });
    } finally {
      await context.close();
    }
  });
});
