/**
 * Shared set-up of the static-host e2e tests: the production build (rebuilt when it
 * predates the service worker and `_headers`), the test-only downloader module built for
 * the page, Debian's Chromium, and the steps of a small experiment in the UI (the tiny
 * model, images from the site's own mirror) with the numbers it shows.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { expect } from 'vitest';
import { CHROMIUM, ROOT, SHARED } from './helpers.ts';
import { tinyClassifier } from '../support/tiny-model.ts';
import { mirrorContent, mirrorRoute, serveSite, type Host, type MirrorContent } from '../support/static-hosts.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';

export { CHROMIUM, ROOT, SHARED };
export const DIST = resolve(ROOT, 'dist');
export const FIREFOX = '/usr/bin/firefox-esr';

/** The production build, built now unless dist/ already has what these tests check. */
export function ensureBuild(): void {
  if (!['index.html', 'sw.js', '_headers'].every((f) => existsSync(join(DIST, f)))) {
    execFileSync('npx', ['vite', 'build'], { cwd: ROOT, stdio: 'inherit' });
  }
}

/** Bundles tests/e2e/probe/downloads-probe.ts for the page; returns the folder. */
export async function buildProbe(): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), 'qp-probe-'));
  const { build } = await import('vite');
  await build({
    configFile: false,
    logLevel: 'warn',
    build: {
      outDir: out,
      emptyOutDir: true,
      target: 'es2022',
      minify: false,
      lib: { entry: resolve(ROOT, 'tests/e2e/probe/downloads-probe.ts'), formats: ['es'], fileName: 'probe' },
    },
  });
  return out;
}

/** Serves the probe folder at /__probe/ (same origin as the site: script-src 'self' allows it). */
export function probeRoute(dir: string) {
  const file = readdirSync(dir).find((f) => /^probe\.(m?js)$/.test(f));
  if (!file) throw new Error(`no probe module in ${dir}`);
  return (req: IncomingMessage, res: ServerResponse, path: string): boolean => {
    if (path !== '/__probe/probe.js') return false;
    const body = readFileSync(join(dir, file));
    res.writeHead(200, { 'Content-Type': 'text/javascript', 'Content-Length': String(body.byteLength) });
    res.end(body);
    return true;
  };
}

export async function chromium(): Promise<Browser> {
  const { chromium: c } = await import('playwright-core');
  return c.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

/** The UI's selectors for the small experiment, shared by the Chromium and Firefox drivers. */
export const UI = {
  modelFile: '[data-testid=model-file]',
  modelReady: 'section[data-state=ready] [data-testid=model-current]',
  dataUrl: '#data-url',
  dataUrlSubmit: 'form:has(#data-url) button[type=submit]',
  dataReady: 'section[data-state=ready] [data-testid=data-current]',
  pickImages: 'input[type=file][multiple]',
  wasm: '[data-engine=wasm]',
  run: '[data-testid=run]',
  runDone: '[data-testid=run-panel][data-state=done]',
  runEnded: '[data-testid=run-panel][data-state=done], [data-testid=run-panel][data-state=error]',
  runError: '[data-testid=run-panel] [role=alert]',
  results: '[data-testid=results]',
  metric: (row: 'fp32' | 'quant', m: 'top1' | 'top5') => `[data-testid=results] tr[data-row=${row}] [data-metric=${m}]`,
  agreement: '[data-testid=results] [data-metric=agreement]',
} as const;

export interface Numbers {
  fp32top1: string;
  qtop1: string;
  qtop5: string;
  agreement: string;
  configHash: string;
}

/** Reads the result table through `text(selector)` (each driver supplies its own). */
export async function readNumbers(
  text: (sel: string) => Promise<string>,
  attr: (sel: string, name: string) => Promise<string | null>,
): Promise<Numbers> {
  return {
    fp32top1: await text(UI.metric('fp32', 'top1')),
    qtop1: await text(UI.metric('quant', 'top1')),
    qtop5: await text(UI.metric('quant', 'top5')),
    agreement: await text(UI.agreement),
    configHash: (await attr(UI.results, 'data-config-hash')) ?? '',
  };
}

/** Playwright: sets a number field and commits it (fields apply on change). */
export async function setNumber(page: Page, field: string, v: number): Promise<void> {
  const input = page.locator(`[data-field="${field}"]`);
  await input.fill(String(v));
  await input.dispatchEvent('change');
}

/** Playwright: runs, waits, throws the app's message when the run failed. */
export async function runAndWait(page: Page, timeout = 300_000): Promise<void> {
  await page.locator(UI.run).click();
  await page.locator(UI.runEnded).first().waitFor({ timeout });
  if ((await page.locator('[data-testid=run-panel]').getAttribute('data-state')) === 'error')
    throw new Error(`run failed: ${await page.locator(UI.runError).innerText()}`);
}

/** The first `n` sample images and the class index, as files for a file input. */
export function sampleFiles(n: number): string[] {
  const dir = join(SHARED, 'imagenet-sample');
  const imgs = readdirSync(dir)
    .filter((f) => extname(f) === '.JPEG')
    .sort()
    .slice(0, n)
    .map((f) => join(dir, f));
  return [...imgs, join(SHARED, 'imagenet_class_index.json')];
}

/** Loads the tiny model and the site's own mirror, runs W8A8 on 8 + 24 images on wasm. */
export async function tinyRunInChromium(page: Page, site: string): Promise<Numbers> {
  await page
    .locator(UI.modelFile)
    .setInputFiles({ name: 'tiny.onnx', mimeType: 'application/octet-stream', buffer: Buffer.from(tinyClassifier()) });
  await page.waitForSelector(`${UI.modelReady}:has-text("tiny.onnx")`, { timeout: 60_000 });
  await page.locator(UI.dataUrl).fill(`${site}mirror/imagenet-sample/`);
  await page.locator(UI.dataUrlSubmit).click();
  await page.waitForSelector(UI.dataReady, { timeout: 60_000 });
  await setNumber(page, 'calib', 8);
  await setNumber(page, 'eval', 24);
  await page.locator(UI.wasm).check();
  await runAndWait(page);
  return readNumbers(
    (s) => page.locator(s).first().innerText(),
    (s, n) => page.locator(s).first().getAttribute(n),
  );
}

/** What `npm run bench -- --json` records of one run, as the link tests compare it. */
export interface CliRecord {
  url: string;
  configHash: string;
  quant: { top1: number; top5: number };
  fp32: { top1: number };
  agreement: number;
}

/**
 * Runs `npm run bench` on the registry's MobileNet-V2 and ImageNet sample through the site's
 * mirror (QP_MIRROR, a cache folder of its own) and returns its one record. Asynchronous:
 * the mirror it downloads from is served by the calling process.
 */
export async function cliRun(mirror: string, args: string[]): Promise<CliRecord> {
  const dir = mkdtempSync(join(tmpdir(), 'qp-cli-link-'));
  const out = join(dir, 'records.json');
  await promisify(execFile)(
    process.execPath,
    [
      join(ROOT, 'node_modules/tsx/dist/cli.mjs'),
      'scripts/bench.ts',
      ...['--model', 'mobilenet-v2', '--data', 'imagenet-sample', ...args, '--json', out],
    ],
    { cwd: ROOT, env: { ...process.env, QP_MIRROR: mirror, QP_CACHE_DIR: join(dir, 'cache') }, timeout: 600_000 },
  );
  const [rec] = JSON.parse(readFileSync(out, 'utf8')) as CliRecord[];
  return rec;
}

/** Asserts that the numbers a page shows are the CLI record's (to the shown 0.1 point). */
export function expectCliNumbers(got: Numbers, rec: CliRecord): void {
  const pct = (s: string) => Number.parseFloat(s.replace(/[^0-9.]/g, ''));
  expect(got.configHash).toBe(rec.configHash);
  expect(pct(got.qtop1)).toBeCloseTo(100 * rec.quant.top1, 1);
  expect(pct(got.qtop5)).toBeCloseTo(100 * rec.quant.top5, 1);
  expect(pct(got.fp32top1)).toBeCloseTo(100 * rec.fp32.top1, 1);
  expect(pct(got.agreement)).toBeCloseTo(100 * rec.agreement, 1);
}

/**
 * The production build on a plain static host whose `site.json` lists the site's own
 * `./mirror/` (the registry's MobileNet-V2 and ImageNet sample from ../shared/data, as
 * `npm run mirror -- --from` would write them); `content` is what the mirror serves.
 */
export async function serveSiteWithMirror(): Promise<{ host: Host; content: MirrorContent }> {
  ensureBuild();
  const content = await mirrorContent({ shared: SHARED });
  const mirror = mirrorRoute(content, '/mirror/');
  const host = await serveSite(DIST, {
    extra: (req, res, path) => {
      if (path !== '/site.json') return mirror(req, res, path);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ mirrors: ['./mirror/'] }));
      return true;
    },
  });
  return { host, content };
}
