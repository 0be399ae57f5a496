import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

const STATE_TESTS = 'tests/unit/state-*.test.ts';

export default defineConfig({
  test: {
    testTimeout: 600_000,
    hookTimeout: 600_000,
    // Integration and e2e tests each drive a 2-thread ORT session; running files in
    // parallel on a 2-core CI machine only makes them slower and noisier.
    fileParallelism: false,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'core',
          include: ['tests/unit/**/*.test.ts', 'tests/integration/**/*.test.ts', 'tests/e2e/**/*.test.ts'],
          exclude: [STATE_TESTS],
        },
      },
      {
        // The rune state classes (*.svelte.ts) need the Svelte compiler, and Svelte's
        // client runtime (the 'browser' condition) so $state/$derived/$effect really
        // react; kept to its own project so the core tests keep Node's module builds.
        extends: true,
        plugins: [svelte({ dynamicCompileOptions: () => ({ generate: 'client' }) })],
        resolve: { conditions: ['browser'] },
        test: { name: 'state', include: [STATE_TESTS] },
      },
    ],
  },
});
