import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/unit/**/*.test.ts', 'tests/integration/**/*.test.ts', 'tests/e2e/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    // Integration and e2e tests each drive a 2-thread ORT session; running files in
    // parallel on a 2-core CI machine only makes them slower and noisier.
    fileParallelism: false,
    reporters: ['default'],
  },
});
