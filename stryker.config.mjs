// @ts-check
/**
 * Mutation testing of the pure core (docs/testing.md). Run it through
 * `npm run test:mutation -- [folders or paths]` (scripts/mutation.ts), one folder at a time.
 * The incremental file reports/stryker-incremental.json is kept in the repository: a rerun
 * re-tests only the mutants whose code or covering tests changed, and a run over one folder
 * keeps the other folders' results, so reports/mutation/index.html always shows the whole core.
 *
 * Only the unit tier runs (vitest.stryker.config.ts): onnxruntime resolves to a refusing stub
 * there, so code that can only run inside an engine session is left out of `mutate` below
 * (each exclusion says why) rather than scored as surviving; the integration tier covers it.
 *
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.stryker.config.ts', related: true },
  checkers: ['typescript'],
  plugins: ['@stryker-mutator/*', './stryker-ignorers.mjs'],
  ignorers: ['error-messages'],
  // the app's sources only (tsconfig.stryker.json says why)
  tsconfigFile: 'tsconfig.stryker.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: 'perTest',
  // the machine has 2 cores shared with other work
  concurrency: 2,
  timeoutMS: 20_000,
  // the initial run of the instrumented unit tests, on a loaded 2-core machine
  dryRunTimeoutMinutes: 60,
  timeoutFactor: 2,
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0, reportScoreTable: true },
  thresholds: { high: 90, low: 80, break: null },
  ignoreStatic: true,
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  mutate: [
    'src/lib/{quant,onnx,ptq,export,experiment,pipeline,config,data,models,storage}/**/*.ts',
    'src/cli/**/*.ts',
    'src/lessons/**/*.ts',
    // a generated list of file names and hashes: data, not behaviour
    '!src/lib/data/manifests/**',
  ],
};
