/**
 * Issue 9 end to end, in the BUILT app (fresh Chromium profiles, dev sample under
 * /shared-data/): a link written by `npm run bench` opens to the same config, model and
 * images with no click and reproduces the CLI's top-1, top-5 and agreement; Cancel in
 * every stage ends the run within 1 s and stores nothing; a refused value (99 bits) keeps
 * Run off until fixed; a 390 px phone has no sideways scroll and Run within reach.
 * Small image counts (16 calibration / 32 evaluation) keep it cheap. Waits on data-*
 * attributes only, never sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { main as bench } from '../../src/cli/bench.ts';
import { ARTIFACTS, SHARED, launch, setNumber, skipReason as missing, type E2eSession, showView } from './helpers.ts';

if (missing) console.warn(`[e2e] skipped: ${missing}.`);

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

async function fresh(s: E2eSession, width = 1400, height = 1000): Promise<Page> {
  const ctx = await s.browser.newContext({ viewport: { width, height } });
  const p = await ctx.newPage();
  p.on('console', (m) => s.logs.push(`[${m.type()}] ${m.text()}`));
  p.on('pageerror', (e) => s.logs.push(`[pageerror] ${e.message}`));
  return p;
}

describe.skipIf(!!missing)('shared links, cancel, form and phone layout (e2e)', () => {
  let s: E2eSession;
  beforeAll(async () => {
    s = await launch();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('a link written by the CLI reproduces its numbers in a fresh browser without choosing anything', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'qp-cli-link-'));
    const json = path.join(dir, 'r.json');
    try {
      const code = await bench([
        '--model',
        path.join(SHARED, 'models/mobilenetv2-7-fp32.onnx'),
        '--data',
        path.join(SHARED, 'imagenet-sample'),
        '--calib',
        '16',
        '--eval',
        '32',
        '--engine',
        'wasm',
        '--json',
        json,
      ]);
      expect(code).toBe(0);
      const [rec] = JSON.parse(readFileSync(json, 'utf8')) as {
        url: string;
        configHash: string;
        fp32: { top1: number; top5: number };
        quant: { top1: number; top5: number };
        agreement: number;
      }[];
      expect(rec.url).toMatch(/^#v=1&/);
      expect(rec.url).toContain('msha=f00130594d83447f');
      expect(rec.url).toContain('msrc=file:mobilenetv2-7-fp32.onnx');
      expect(rec.url).toContain('dsrc=folder:imagenet-sample');

      const page = await fresh(s);
      await page.goto(`${s.base}${rec.url}`);
      await page.waitForSelector('main[data-ready=true]');
      await page.locator('section[data-state=ready] [data-testid=model-current]').waitFor({ timeout: 60_000 });
      await page.locator('section[data-state=ready] [data-testid=data-current]').waitFor({ timeout: 60_000 });
      expect(await page.locator('[data-testid=registry-match]').count()).toBe(0); // a different file from the registry's
      expect(await page.locator('[data-engine=wasm]').isChecked()).toBe(true);
      await page.locator('[data-testid=run]').click();
      await page
        .locator('[data-testid=run-panel][data-state=done], [data-testid=run-panel][data-state=error]')
        .waitFor({ timeout: 300_000 });
      expect(await page.locator('[data-testid=run-panel]').getAttribute('data-state')).toBe('done');
      await page.locator('[data-testid=results][data-state=fresh]').waitFor();
      const t = (sel: string) => page.locator(sel).first().innerText();
      // same config, same hash
      expect(await page.locator('[data-testid=results]').getAttribute('data-config-hash')).toBe(rec.configHash);
      expect(await t('[data-testid=results] tr[data-row=fp32] [data-metric=top1]')).toBe(pct(rec.fp32.top1));
      expect(await t('[data-testid=results] tr[data-row=fp32] [data-metric=top5]')).toBe(pct(rec.fp32.top5));
      expect(await t('[data-testid=results] tr[data-row=quant] [data-metric=top1]')).toBe(pct(rec.quant.top1));
      expect(await t('[data-testid=results] tr[data-row=quant] [data-metric=top5]')).toBe(pct(rec.quant.top5));
      expect(await t('[data-testid=results] [data-metric=agreement]')).toBe(pct(rec.agreement));
      // a reload restores the model and images in use (from the cache, by hash)
      await page.reload();
      await page.waitForSelector('main[data-ready=true]');
      await page.locator('section[data-state=ready] [data-testid=model-current]').waitFor({ timeout: 60_000 });
      await page.locator('section[data-state=ready] [data-testid=data-current]').waitFor({ timeout: 60_000 });
      expect(await page.locator('[data-testid=run]').isEnabled()).toBe(true);
      await page.context().close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('cancel ends the run within 1 s in every stage, stores nothing, and the app stays usable', async () => {
    const page = await fresh(s);
    // fixes, a histogram observer (second calibration pass) and the analysis: every stage runs
    await page.goto(
      `${s.base}#v=1&backend=tensorrt&aObserver=mse&calib=8&eval=16&biasCorrection=1&analyze=4&engine=wasm`,
    );
    await page.waitForSelector('main[data-ready=true]');
    await page.locator('[data-testid=shared-model]', { hasText: 'mobilenetv2-7-fp32.onnx' }).click();
    await page.locator('section[data-state=ready] [data-testid=model-current]').waitFor({ timeout: 60_000 });
    await page.locator('[data-testid=shared-data]').click();
    await page.locator('section[data-state=ready] [data-testid=data-current]').waitFor({ timeout: 60_000 });
    expect(await page.locator('[data-field=analyze]').isChecked()).toBe(true);

    const targets: [string, string][] = [
      ['decode', ''],
      ['load', ''],
      ['fp32', ''],
      ['calibrate', 'statistics'],
      ['calibrate', 'histograms'], // one pass collects both: its message names both
      ['quantize', 'Fixes'],
      ['evaluate', ''],
      ['analyze', ''],
    ];
    const seen: string[] = [];
    for (const [stage, msg] of targets) {
      // clicks Cancel from inside the page the moment the stage shows, and times the end
      const timing = page.evaluate(
        ([stage, msg]) =>
          new Promise<{ ms: number; at: string } | string>((resolve) => {
            let clickedAt = 0;
            let started = false;
            let at = '';
            const tick = () => {
              const panel = document.querySelector('[data-testid=run-panel]')!;
              const state = panel.getAttribute('data-state');
              if (!clickedAt) {
                const p = panel.querySelector('.progress');
                if (state === 'running') started = true;
                else if (started) return resolve(`run ended (${state}) before stage ${stage} ${msg}`);
                if (
                  p &&
                  p.getAttribute('data-stage') === stage &&
                  (p.getAttribute('data-message') ?? '').includes(msg)
                ) {
                  at = `${stage} ${p.getAttribute('data-message')}`;
                  (document.querySelector('[data-testid=cancel]') as HTMLButtonElement).click();
                  clickedAt = performance.now();
                }
              } else if (state === 'cancelled') {
                return resolve({ ms: performance.now() - clickedAt, at });
              }
              requestAnimationFrame(tick);
            };
            tick();
          }),
        [stage, msg],
      );
      await page.locator('[data-testid=run]').click();
      const r = await timing;
      if (typeof r === 'string') throw new Error(r);
      const end = await page.locator('[data-testid=run-panel]').getAttribute('data-cancel-end');
      seen.push(`${r.at}: ${r.ms.toFixed(0)} ms (${end})`);
      expect(r.ms, seen.join('; ')).toBeLessThan(1000);
      // usable again: model and images ready (reloaded if the worker was ended)
      await page.locator('[data-testid=run]:not([disabled])').waitFor({ timeout: 60_000 });
    }
    console.log(`[e2e] cancel per stage: ${seen.join('; ')}`);
    await showView(page, 'history');
    expect(await page.locator('[data-testid=history] tbody tr').count()).toBe(0);
    expect(await page.locator('[data-testid=results]').getAttribute('data-state')).toBe('empty');
    await page.context().close();
  });

  it('99 bits keeps Run off until the field is fixed or reverted, whatever else is edited', async () => {
    const page = await fresh(s);
    await page.goto(`${s.base}#v=1&backend=tensorrt&calib=16&eval=32`);
    await page.waitForSelector('main[data-ready=true]');
    await page.locator('[data-testid=shared-model]', { hasText: 'mobilenetv2-7-fp32.onnx' }).click();
    await page.locator('section[data-state=ready] [data-testid=model-current]').waitFor({ timeout: 60_000 });
    await page.locator('[data-testid=shared-data]').click();
    await page.locator('section[data-state=ready] [data-testid=data-current]').waitFor({ timeout: 60_000 });
    const run = page.locator('[data-testid=run]');
    expect(await run.isEnabled()).toBe(true);
    await setNumber(page, 'wBits', 99);
    await page.locator('[data-field-error=wBits]').waitFor();
    expect(await run.isEnabled()).toBe(false);
    await setNumber(page, 'seed', 3); // another field: the error and the disabled Run stay
    expect(await page.locator('[data-field=wBits]').inputValue()).toBe('99');
    expect(await page.locator('[data-field-error=wBits]').count()).toBe(1);
    expect(await run.isEnabled()).toBe(false);
    expect(page.url()).not.toContain('wBits=99');
    await page.locator('[data-revert=wBits]').click(); // visibly reverted
    expect(await page.locator('[data-field=wBits]').inputValue()).toBe('8');
    expect(await run.isEnabled()).toBe(true);
    await setNumber(page, 'wBits', 99);
    await setNumber(page, 'wBits', 6); // fixed
    expect(await run.isEnabled()).toBe(true);
    expect(page.url()).toContain('wBits=6');
    await page.context().close();
  });

  it('a 390 px phone: no sideways scroll, Run in reach, a skip link, focus kept on the model list', async () => {
    const page = await fresh(s, 390, 844);
    await page.goto(s.base);
    await page.waitForSelector('main[data-ready=true]');
    const fits = () => page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    let [sw, iw] = await fits();
    expect(sw).toBeLessThanOrEqual(iw);
    // the run bar is on screen without scrolling past the settings
    const bar = await page.locator('[data-testid=runbar-run]').boundingBox();
    expect(bar).not.toBeNull();
    expect(bar!.y + bar!.height).toBeLessThanOrEqual(844);
    // keyboard: the first Tab reaches the skip link, which moves focus to the run panel
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('skip-link');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('run-panel');
    // choosing a model with Enter keeps focus on that entry of the list
    const choice = page.locator('[data-testid=shared-model]', { hasText: 'mobilenetv2-7-fp32.onnx' });
    await choice.focus();
    await page.keyboard.press('Enter');
    await page.locator('section[data-state=ready] [data-testid=model-current]').waitFor({ timeout: 60_000 });
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('shared-model');
    await page.locator('[data-testid=shared-data]').click();
    await page.locator('section[data-state=ready] [data-testid=data-current]').waitFor({ timeout: 60_000 });
    [sw, iw] = await fits();
    expect(sw).toBeLessThanOrEqual(iw);
    await page.screenshot({ path: `${ARTIFACTS}/share-390px.png`, fullPage: false });
    await page.context().close();
  });
});
