/**
 * `npm run bench:transfer` (src/cli/transfer.ts): the service worker's precache list read
 * from sw.js, the bytes a split reads from the embedded manifest, the interval a "Try it"
 * evaluation size gives, and each lesson's download.
 */
import { mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  appGroups,
  engineBinaries,
  halfWidthPoints,
  lessonCosts,
  precachedFiles,
  splitCost,
  tryItOptions,
} from '../../src/cli/transfer.ts';
import { filesForSplit, getImageSet } from '../../src/lib/data/image-sets.ts';
import { LESSONS } from '../../src/lessons/index.ts';

describe('bench:transfer', () => {
  it('reads the precache list of sw.js, with sw.js, its Workbox runtime and the scripts it imports, and groups it', () => {
    const dist = mkdtempSync(join(tmpdir(), 'qp-dist-'));
    writeFileSync(
      join(dist, 'sw.js'),
      'define(["./workbox-ee9d8b34"],function(s){importScripts("engine-keeper.js"),s.precacheAndRoute([{url:"index.html",revision:"ab"},{url:"assets/ort-wasm-x.wasm",revision:null},{url:"assets/mozjpeg_dec-y.wasm",revision:null}],{})});',
    );
    for (const [f, n] of [
      ['index.html', 100],
      ['workbox-ee9d8b34.js', 50],
      ['engine-keeper.js', 20],
    ] as const)
      writeFileSync(join(dist, f), 'x'.repeat(n));
    expect(precachedFiles(dist)).toEqual([
      'index.html',
      'assets/ort-wasm-x.wasm',
      'assets/mozjpeg_dec-y.wasm',
      'sw.js',
      'workbox-ee9d8b34.js',
      'engine-keeper.js',
    ]);
    expect(() => precachedFiles(join(dist, 'none'))).toThrow(/has no sw\.js: run `npm run build` first/);
    // groups need the files themselves
    mkdirSync(join(dist, 'assets'));
    writeFileSync(join(dist, 'assets/ort-wasm-x.wasm'), new Uint8Array(1000));
    writeFileSync(join(dist, 'assets/mozjpeg_dec-y.wasm'), new Uint8Array(10));
    const g = appGroups(dist);
    expect(g.map((x) => [x.files, x.bytes])).toEqual([
      [['assets/ort-wasm-x.wasm'], 1000],
      [['assets/mozjpeg_dec-y.wasm'], 10],
      [
        ['index.html', 'sw.js', 'workbox-ee9d8b34.js', 'engine-keeper.js'],
        100 + statSync(join(dist, 'sw.js')).size + 50 + 20,
      ],
    ]);
    expect(g[0].gzip).toBeLessThan(100); // zeros compress
  });

  it('names the engine binary of each kind of browser, and refuses a build that has none or two', () => {
    const dist = mkdtempSync(join(tmpdir(), 'qp-dist-'));
    mkdirSync(join(dist, 'assets'));
    writeFileSync(join(dist, 'assets/ort-wasm-simd-threaded-Ab_1.wasm'), new Uint8Array(1000));
    expect(() => engineBinaries(dist)).toThrow(
      `${dist} has 0 files for onnxruntime's WebGPU build .wasm (expected one): run \`npm run build\` again.`,
    );
    writeFileSync(join(dist, 'assets/ort-wasm-simd-threaded.asyncify-Cd-2.wasm'), new Uint8Array(3000));
    writeFileSync(join(dist, 'assets/mozjpeg_dec-x.wasm'), new Uint8Array(10));
    const b = engineBinaries(dist);
    expect([b.without.files, b.without.bytes]).toEqual([['assets/ort-wasm-simd-threaded-Ab_1.wasm'], 1000]);
    expect([b.with.files, b.with.bytes]).toEqual([['assets/ort-wasm-simd-threaded.asyncify-Cd-2.wasm'], 3000]);
    expect(b.with.gzip).toBeLessThan(100); // zeros compress
    writeFileSync(join(dist, 'assets/ort-wasm-simd-threaded-Ef3.wasm'), new Uint8Array(1));
    expect(() => engineBinaries(dist)).toThrow(/has 2 files for onnxruntime's plain \.wasm/);
  });

  it('counts the bytes of exactly the files a split reads', async () => {
    const m = await getImageSet('imagenet-sample').load();
    const files = filesForSplit(m, 32, 150, 3);
    expect(await splitCost(32, 150, [3])).toEqual({
      calib: 32,
      eval: 150,
      images: 182,
      bytes: files.reduce((s, f) => s + f.bytes, 0),
    });
    const worst = await splitCost(32, 150, [0, 1, 2, 3]);
    expect(worst.bytes).toBeGreaterThanOrEqual((await splitCost(32, 150, [3])).bytes);
  });

  it('gives the Wilson half-width and picks the largest evaluation within the budget', async () => {
    expect(halfWidthPoints(0.83, 872)).toBeCloseTo(2.5, 1);
    expect(halfWidthPoints(0.83, 150)).toBeCloseTo(5.9, 1);
    const { options, pick } = await tryItOptions({
      modelBytes: 13_964_571,
      budget: 40e6,
      calib: 32,
      evals: [100, 150, 400],
      p: 0.83,
    });
    expect(options.map((o) => o.total > 40e6)).toEqual([false, false, true]);
    expect(pick?.eval).toBe(150);
  });

  it("prices every lesson's link", async () => {
    const costs = await lessonCosts();
    expect(costs.map((c) => c.id)).toEqual(LESSONS.map((l) => l.id));
    const calibSize = costs.find((c) => c.id === 'calibration-size')!;
    expect([calibSize.calib, calibSize.eval]).toEqual([8, 872]);
    expect(calibSize.bytes).toBeLessThan(getImageSet('imagenet-sample').totalBytes);
  });
});
