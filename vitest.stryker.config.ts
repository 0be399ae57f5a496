import { defineConfig } from 'vitest/config';
import { unitProject } from './vitest.config.ts';

/**
 * The vitest config Stryker runs (stryker.config.mjs): the unit tier alone, as one plain
 * project. Mutation runs re-run the tests that cover each mutant hundreds of times, so only
 * the fast tier fits; code that needs the engine is covered by the integration tier and is
 * left out of mutation (see stryker.config.mjs).
 */
// `npm run test:mutation -- --tests GLOB …` (scripts/mutation.ts): only the tests that guard
// the mutated files, rather than every unit test that happens to reach them. Kept in step
// with MUTATION_TESTS_ENV there (this config is loaded on its own, by Stryker's runner).
const only = process.env.QP_MUTATION_TESTS?.split('\n').filter(Boolean);

export default defineConfig({
  ...unitProject,
  // instrumented code (every expression asks which mutant is active) runs the unit tier's
  // heaviest loops several times slower; Stryker times each mutant out on its own
  test: {
    ...unitProject.test,
    ...(only?.length ? { include: only } : {}),
    reporters: ['default'],
    testTimeout: 600_000,
  },
});
