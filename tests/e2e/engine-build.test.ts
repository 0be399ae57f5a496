/**
 * A lighter first visit: the BUILT app fetches one onnxruntime .wasm, and only the one its
 * browser needs — the plain wasm build where there is no WebGPU adapter (Chromium started
 * without --enable-unsafe-webgpu), the WebGPU build (which also runs wasm) where there is
 * one (SwiftShader). Read from every request of the page, its workers and its service
 * worker (which precaches neither binary and, as it installs, stores the one this browser's
 * worker will load: src/lib/offline/engine-cache.ts) during a first visit and a run of the
 * tiny classifier; the sizes are printed. Skips like the other e2e tests.
 */
import { describe, expect, it } from 'vitest';
import { tinyClassifier } from '../support/tiny-model.ts';
import { launch, setNumber, runAndWait, skipReason as missing } from './helpers.ts';

if (missing) console.warn(`[e2e] skipped: ${missing}.`);

const ORT_WASM = /\/ort-wasm[^/]*\.wasm(\?|$)/;

describe.skipIf(!!missing)('which onnxruntime build a browser downloads', () => {
  for (const webgpu of [false, true]) {
    it(`${webgpu ? 'with' : 'without'} WebGPU: only the ${webgpu ? 'WebGPU' : 'plain wasm'} build's .wasm`, async () => {
      const session = await launch({ webgpu });
      try {
        const { page, context } = session;
        const fetched: { url: string; bytes: number; by: string }[] = [];
        context.on('requestfinished', async (r) => {
          if (!ORT_WASM.test(r.url())) return;
          const size = await r.sizes().catch(() => undefined);
          fetched.push({ url: r.url(), bytes: size?.responseBodySize ?? -1, by: r.serviceWorker() ? 'sw' : 'page' });
        });
        await page.goto(session.base);
        await page.waitForSelector('main[data-ready=true]');
        await page.locator('[data-testid=model-file]').setInputFiles({
          name: 'tiny.onnx',
          mimeType: 'application/octet-stream',
          buffer: Buffer.from(tinyClassifier()),
        });
        await page.waitForSelector('section[data-state=ready] [data-testid=model-current]:has-text("tiny.onnx")');
        await page.locator('[data-testid=shared-data]').click();
        await page.waitForSelector('section[data-state=ready] [data-testid=data-current]', { timeout: 120_000 });
        await setNumber(page, 'calib', 4);
        await setNumber(page, 'eval', 4);
        await page.locator('[data-engine=auto]').check();
        await runAndWait(page, 300_000);
        const kind = await page.locator('[data-testid=engine-used]').getAttribute('data-engine-kind');
        expect(kind).toBe(webgpu ? 'webgpu' : 'wasm');
        console.log(
          `[e2e] ${webgpu ? 'with' : 'without'} WebGPU: ${fetched.map((f) => `${f.url.split('/').pop()} ${(f.bytes / 2 ** 20).toFixed(1)} MiB (${f.by})`).join(', ')}`,
        );
        // one binary, whoever asked for it: the installing service worker storing it and the
        // engine's own load (from the network: a first install does not claim the page)
        const urls = [...new Set(fetched.map((f) => f.url))];
        expect(urls).toHaveLength(1);
        expect(/asyncify/.test(urls[0]), urls[0]).toBe(webgpu);
      } finally {
        await session.close();
      }
    });
  }
});
