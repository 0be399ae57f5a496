/**
 * A lighter first visit: the BUILT app fetches one onnxruntime .wasm, and only the one its
 * browser needs — the plain wasm build where there is no WebGPU adapter (Chromium started
 * without --enable-unsafe-webgpu), the WebGPU build (which also runs wasm) where there is
 * one (SwiftShader). Read from the requests of the page and its workers during a run of the
 * tiny classifier; the sizes are printed. Skips like the other e2e tests.
 * Not counted: the offline service worker's precache, which (vite.config.ts, workbox
 * globPatterns) still downloads both .wasm files in the background on a first visit.
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
        const fetched: { url: string; bytes: number }[] = [];
        context.on('requestfinished', async (r) => {
          // the engine's own fetch, not the service worker's precache (see the header)
          if (!ORT_WASM.test(r.url()) || r.serviceWorker()) return;
          const size = await r.sizes().catch(() => undefined);
          fetched.push({ url: r.url(), bytes: size?.responseBodySize ?? -1 });
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
          `[e2e] ${webgpu ? 'with' : 'without'} WebGPU: ${fetched.map((f) => `${f.url.split('/').pop()} ${(f.bytes / 2 ** 20).toFixed(1)} MiB`).join(', ')}`,
        );
        expect(fetched).toHaveLength(1);
        expect(/asyncify/.test(fetched[0].url), fetched[0].url).toBe(webgpu);
      } finally {
        await session.close();
      }
    });
  }
});
