/**
 * Shared setup of the e2e tests: the BUILT app served by vite preview on a free port,
 * Debian's Chromium driven by playwright-core, and small page helpers. `skipReason` is
 * non-empty when /usr/bin/chromium or ../shared/data is absent (tests skip with it).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Plugin, PreviewServer } from 'vite';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CHROMIUM = '/usr/bin/chromium';
export const SHARED = resolve(ROOT, '../shared/data');
export const ARTIFACTS = resolve(ROOT, 'test-artifacts');
export const skipReason = !existsSync(CHROMIUM)
  ? `${CHROMIUM} is not installed (apt-get install chromium)`
  : !existsSync(SHARED)
    ? `${SHARED} is absent`
    : '';

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

export interface E2eSession {
  server: PreviewServer;
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** http://127.0.0.1:PORT/ */
  base: string;
  /** console messages and page errors, newest last */
  logs: string[];
  close(): Promise<void>;
}

/**
 * Builds the app when dist/ is missing, serves it with vite preview and opens one page.
 * The preview server sends what vite.config.ts sets (security-headers.ts: cross-origin
 * isolation and the strict CSP), the same headers as the dev server and the static hosting
 * of docs/hosting.md. `plugins` add test-only routes (before the SPA fallback); `webgpu: false`
 * starts Chromium without WebGPU.
 */
export async function launch(opts: { plugins?: Plugin[]; webgpu?: boolean } = {}): Promise<E2eSession> {
  mkdirSync(ARTIFACTS, { recursive: true });
  if (!existsSync(resolve(ROOT, 'dist/index.html'))) {
    execFileSync('npx', ['vite', 'build'], { cwd: ROOT, stdio: 'inherit' });
  }
  const { preview } = await import('vite');
  const port = await freePort();
  const server = await preview({
    root: ROOT,
    logLevel: 'warn',
    plugins: opts.plugins,
    preview: { port, strictPort: true, host: '127.0.0.1', open: false },
  });
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      // without it Chromium offers navigator.gpu but no adapter here: a browser without WebGPU
      ...(opts.webgpu === false ? [] : ['--enable-unsafe-webgpu']),
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
      '--disable-quic',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const logs: string[] = [];
  page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  return {
    server,
    browser,
    context,
    page,
    base: `http://127.0.0.1:${port}/`,
    logs,
    async close() {
      if (logs.length) console.log(logs.slice(-40).join('\n'));
      await browser.close();
      await server.close();
    },
  };
}

/** Opens the app of a session, waits until it is ready and chooses the wasm engine. */
export async function openOnWasm(s: E2eSession): Promise<Page> {
  await s.page.goto(s.base);
  await s.page.waitForSelector('main[data-ready=true]');
  await s.page.locator('[data-engine=wasm]').check();
  return s.page;
}

/** Type a number into a config field and commit it (the fields apply on change). */
export async function setNumber(page: Page, field: string, v: number): Promise<void> {
  const input = page.locator(`[data-field="${field}"]`);
  await input.fill(String(v));
  await input.dispatchEvent('change');
}

/** Picks the shared MobileNet-V2 and the shared sample images, waiting until both are ready. */
export async function loadSharedMobileNet(page: Page): Promise<void> {
  const choice = page.locator('[data-testid=shared-model]', { hasText: 'mobilenetv2-7-fp32.onnx' });
  // with a model already loaded (a lesson loads its own), the choices are folded away
  await page.waitForSelector('main[data-ready=true]');
  if (!(await choice.isVisible())) await page.locator('details:has([data-testid=shared-model]) > summary').click();
  await choice.click();
  await page.waitForSelector('section[data-state=ready] [data-testid=model-current]', { timeout: 60_000 });
  await page.locator('[data-testid=shared-data]').click();
  await page.waitForSelector('section[data-state=ready] [data-testid=data-current]', { timeout: 60_000 });
}

/** Clicks Run and waits until the run is done; throws with the app's message when it failed. */
export async function runAndWait(page: Page, timeout = 540_000): Promise<void> {
  await page.locator('[data-testid=run]').click();
  await page.locator('[data-testid=run-panel][data-state=running]').waitFor();
  await page
    .locator('[data-testid=run-panel][data-state=done], [data-testid=run-panel][data-state=error]')
    .waitFor({ timeout });
  if ((await page.locator('[data-testid=run-panel]').getAttribute('data-state')) === 'error') {
    throw new Error(`run failed: ${await page.locator('[data-testid=run-panel] [role=alert]').innerText()}`);
  }
}

/**
 * Shows a section below the workbench (its tab): learn | analysis | graph | history. The
 * analysis, the graph, the weight view and the history are drawn only on their tab.
 */
export async function showView(page: Page, view: 'learn' | 'analysis' | 'graph' | 'history'): Promise<void> {
  await page.locator(`[role=tab][data-view=${view}]`).click();
  await page.locator(`[data-testid=view-${view}]`).waitFor();
}
