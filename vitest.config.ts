import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

/**
 * Three tiers (DEVELOPMENT.md):
 * - unit: pure code, in parallel, 30 s per test; no real data, no onnxruntime session (the
 *   engine packages resolve to a stub that refuses), no browser. `npm run test:fast`.
 * - integration: the engine on tiny and real models, real images from ../shared/data.
 * - e2e: the built app in Debian's Chromium and Firefox.
 * Integration and e2e files run one at a time: each drives a multi-threaded engine or a
 * browser, and on a 2-core machine running them side by side only makes them slower.
 */
const STATE_TESTS = 'tests/unit/state-*.test.ts';
const noEngine = fileURLToPath(new URL('./tests/support/no-engine.ts', import.meta.url));
const unitAlias = { 'onnxruntime-web': noEngine, 'onnxruntime-node': noEngine };
const serial = { fileParallelism: false, testTimeout: 600_000, hookTimeout: 600_000 };

/** The unit tier on its own; Stryker's runs use it too (vitest.stryker.config.ts). */
export const unitProject = {
  resolve: { alias: unitAlias },
  test: { name: 'unit', include: ['tests/unit/**/*.test.ts'], exclude: [STATE_TESTS], testTimeout: 30_000 },
};

export default defineConfig({
  test: {
    reporters: ['default'],
    // vitest keeps one core free by default; the unit tier is CPU-bound and may use them all
    maxWorkers: '100%',
    // `npm run test:fast` turns coverage on (--coverage): V8's own counters, cheap enough
    // for the fast tier. Every source file counts, loaded by a test or not, so a file no
    // unit test reaches shows (scripts/coverage-gaps.ts lists those after the summary);
    // the engine-bound ones are covered by the integration tier instead.
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts', 'workers/**/*.ts'],
      exclude: ['src/lib/data/manifests/**', '**/*.d.ts'],
      reporter: ['text-summary', 'json-summary', ['html', { subdir: 'html' }]],
      reportsDirectory: 'coverage',
    },
    projects: [
      unitProject,
      {
        // The rune state classes (*.svelte.ts) need the Svelte compiler, and Svelte's
        // client runtime (the 'browser' condition) so $state/$derived/$effect really
        // react; kept to its own project so the other tests keep Node's module builds.
        plugins: [svelte({ dynamicCompileOptions: () => ({ generate: 'client' }) })],
        resolve: { conditions: ['browser'], alias: unitAlias },
        test: { name: 'state', include: [STATE_TESTS], testTimeout: 30_000 },
      },
      { test: { name: 'integration', include: ['tests/integration/**/*.test.ts'], ...serial } },
      { test: { name: 'e2e', include: ['tests/e2e/**/*.test.ts'], ...serial } },
    ],
  },
});
