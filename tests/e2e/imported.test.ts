/**
 * A quantized ONNX file in the BUILT app (Chromium, wasm): the QDQ form onnxruntime's
 * quantizer writes (tests/support/imported-fixtures.ts ortStyleQdq) of the tiny classifier
 * is opened through the model picker, recognised as quantized, its per-layer table shown
 * with bits; it is evaluated as it is, refused with a sentence against a float model that is not its parent, compared with its parent (agreement shown),
 * and its scheme re-simulated on the parent as an ordinary run.
 * Skips with a message when /usr/bin/chromium or ../shared/data is absent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tinyQdqPair } from '../support/tiny-qdq.ts';
import { ARTIFACTS, launch, setNumber, showView, skipReason, type E2eSession, openOnWasm } from './helpers.ts';

if (skipReason) console.warn(`[e2e imported] skipped: ${skipReason}.`);

const { parent: parentBytes, qdq: qdqBytes } = tinyQdqPair();

const percent = async (page: Page, sel: string) => parseFloat(await page.locator(sel).innerText());

describe.skipIf(!!skipReason)('imported quantized model in the app', () => {
  let s: E2eSession;
  let page: Page;
  beforeAll(async () => {
    s = await launch();
    page = await openOnWasm(s);
    await setNumber(page, 'calib', 8);
    await setNumber(page, 'eval', 32);
    await page.locator('[data-testid=shared-data]').click();
    await page.waitForSelector('section[data-state=ready] [data-testid=data-current]', { timeout: 60_000 });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('opens a QDQ file, evaluates it as it is, compares it with its parent and re-simulates it', async () => {
    await page
      .locator('[data-testid=model-file]')
      .setInputFiles({ name: 'tiny-int8.onnx', mimeType: 'application/octet-stream', buffer: Buffer.from(qdqBytes) });
    await page.waitForSelector('section[data-state=ready] [data-testid=model-current]:has-text("tiny-int8.onnx")');
    expect(await page.locator('[data-testid=model-quantized]').innerText()).toMatch(/QDQ: 2 of 2 layers quantized/);
    await page.locator('[data-testid=model-quantized-open]').click();
    await page.locator('[data-testid=view-graph]').waitFor();

    // (a) the per-layer table: one row per weighted layer, 8-bit weights
    const rows = page.locator('[data-testid=imported-layer-row]');
    expect(await rows.count()).toBe(2);
    expect(await rows.locator('[data-col=bits]').allInnerTexts()).toEqual(['8', '8']);
    expect(await rows.first().innerText()).toMatch(/per channel \(8\)/);
    // the graph marks the quantized layers
    await page.locator('[data-testid=graph-view][data-state=ready]').waitFor();
    expect(await page.locator('[data-testid=graph-view] [data-imported-bits="8"]').count()).toBe(2);

    // (b) as it is
    await page.locator('[data-testid=imported-evaluate]').click();
    await page.locator('[data-testid=imported-asis], [data-testid=imported-panel] [role=alert]').first().waitFor({
      timeout: 300_000,
    });
    expect(await page.locator('[data-testid=imported-panel] [role=alert]').count()).toBe(0);
    const asIs = await percent(page, '[data-testid=imported-asis-top1]');
    expect(asIs).toBeGreaterThanOrEqual(0);
    expect(await page.locator('[data-testid=imported-asis]').innerText()).toMatch(/on 32 images/);

    // a float model that is not the parent: the cause and what to do, and the app goes on
    await page.locator('[data-testid=imported-parent-file]').setInputFiles({
      name: 'other.onnx',
      mimeType: 'application/octet-stream',
      buffer: readFileSync(join(import.meta.dirname, '../fixtures/bad-inputs/valid-tiny.onnx')),
    });
    const refusal = page.locator('[data-testid=imported-panel] [role=alert][data-code=MODEL_UNSUPPORTED]');
    await refusal.waitFor({ timeout: 60_000 });
    expect(await refusal.innerText()).toMatch(/not its parent.*Open the float model the quantized one was made from/s);

    // (c) the float parent: layers matched by topology, agreement shown
    await page
      .locator('[data-testid=imported-parent-file]')
      .setInputFiles({ name: 'tiny.onnx', mimeType: 'application/octet-stream', buffer: Buffer.from(parentBytes) });
    await page
      // (the refusal above stays until the comparison starts: wait for another outcome)
      .locator(
        '[data-testid=imported-comparison], [data-testid=imported-panel] [role=alert]:not([data-code=MODEL_UNSUPPORTED])',
      )
      .first()
      .waitFor({ timeout: 300_000 });
    const alerts = page.locator('[data-testid=imported-panel] [role=alert]');
    if (await alerts.count()) throw new Error(`comparison failed: ${await alerts.first().innerText()}`);
    const comparison = await page.locator('[data-testid=imported-comparison]').innerText();
    expect(comparison).toMatch(/2 layers matched by topology/);
    const agreement = await percent(page, '[data-testid=imported-agreement]');
    expect(agreement).toBeGreaterThan(0);
    expect(agreement).toBeLessThanOrEqual(100);
    expect(await page.locator('[data-testid=imported-comparison-table] tbody tr').count()).toBe(2);
    // the as-is figure is the same file on the same images
    expect(await percent(page, '[data-testid=imported-asis-top1]')).toBe(asIs);
    await page.locator('[data-testid=imported-panel]').screenshot({ path: `${ARTIFACTS}/imported-compare.png` });

    // (d) re-simulate: the imported scheme as settings, run like any settings
    await page.locator('[data-testid=imported-resimulate]').click();
    await page
      .locator('[data-testid=run-panel][data-state=done], [data-testid=run-panel][data-state=error]')
      .waitFor({ timeout: 300_000 });
    expect(await page.locator('[data-testid=run-panel]').getAttribute('data-state')).toBe('done');
    expect(await page.locator('[data-field=wObserver]').inputValue()).toBe('imported');
    await showView(page, 'graph');
  });
});
