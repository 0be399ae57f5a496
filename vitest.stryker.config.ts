import { defineConfig } from 'vitest/config';
import { unitProject } from './vitest.config.ts';

/**
 * The vitest config Stryker runs (stryker.config.mjs): the unit tier alone, as one plain
 * project. Mutation runs re-run the tests that cover each mutant hundreds of times, so only
 * the fast tier fits; code that needs the engine is covered by the integration tier and is
 * left out of mutation (see stryker.config.mjs).
 */
export default defineConfig({
  ...unitProject,
  // instrumented code (every expression asks which mutant is active) runs the unit tier's
  // heaviest loops several times slower; Stryker times each mutant out on its own
  test: { ...unitProject.test, reporters: ['default'], testTimeout: 600_000 },
});
