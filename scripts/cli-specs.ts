/**
 * The command lines of the scripts under scripts/ whose work runs at their top level (the
 * benchmarks and diagnostics): what each takes, in the form src/cli/options.ts reads
 * (config fields by their schema flags, run options, the command line's own options).
 * They live here, apart from the scripts, so that their --help can be read and checked
 * without starting one (tests/unit/cli-help.test.ts); a script parses its arguments with
 * `parseCliOrExit(SPEC)` before it loads anything.
 * Pure data: no I/O, no engine.
 */
import { resolve } from 'node:path';
import { CLI_OPTIONS, FLAG, PATH, TEXT, type CliOption, type CliSpec } from '../src/cli/options.ts';
import { DEFAULT_PTQ_ITERS } from '../src/lib/config/resolve.ts';
import { SAMPLE_STRIDE } from '../src/lib/experiment/calibrate.ts';
import { MODEL_REGISTRY } from '../src/lib/models/registry.ts';

const SHARED = resolve(import.meta.dirname, '../../shared/data');
const MOBILENET = resolve(SHARED, 'models/mobilenetv2-7-fp32.onnx');
const SAMPLE = resolve(SHARED, 'imagenet-sample');
const CLASS_INDEX = resolve(SHARED, 'imagenet_class_index.json');

const NUMBER = {
  kind: 'string',
  maxLength: 32,
  pattern: /^(\d+\.?\d*|\.\d+)(e-?\d+)?$/,
  patternText: 'a number of at least 0 (e.g. 0.01 or 1e-3)',
} as const;

/** A whole-number option of a command. */
function count(flag: string, help: string, def?: number, min = 1, max = 1_000_000): CliOption {
  return { flag, arg: 'N', type: { kind: 'int', min, max }, help, default: def };
}

function json(help: string): CliOption {
  return { ...CLI_OPTIONS.json, help };
}

export const BENCH_PERF_CLI: CliSpec = {
  command: 'npm run bench:perf --',
  config: ['model', 'dataset'],
  run: ['engine', 'threads'],
  extra: {
    images: count('images', 'images of the timed passes', 128),
    repeats: count('repeats', 'rounds; each ratio is the median of the rounds', 5),
    load: count('load', 'other CPU-bound processes running during the measurement', 0, 0, 64),
    models: {
      flag: 'models',
      arg: 'all|none|ID,ID',
      type: TEXT,
      help: 'synthetic architectures whose throughput is measured after the ratios',
      default: 'all',
    },
    modelImages: count('model-images', 'images of the throughput measurement', 64),
    json: json('write the ratios (medians of per-round ratios), the load and the rounds as JSON'),
  },
  defaults: { model: MOBILENET, dataset: SAMPLE },
};

export const BENCH_PTQ_CLI: CliSpec = {
  command: 'npm run bench:ptq --',
  config: [
    'model',
    'dataset',
    'ptq',
    'ptqIters',
    'wBits',
    'aBits',
    'ptqActRanges',
    'ptqDrop',
    'calib',
    'eval',
    'ptqInputs',
    'bnReestimate',
  ],
  lists: ['ptq', 'ptqIters', 'wBits', 'aBits', 'ptqActRanges', 'ptqDrop', 'ptqInputs', 'bnReestimate'],
  run: ['engine', 'threads'],
  cli: ['labels'],
  extra: { units: { flag: 'units', type: FLAG, help: "print each block's or layer's error and learned step sizes" } },
  defaults: {
    model: MOBILENET,
    dataset: SAMPLE,
    labels: CLASS_INDEX,
    ptq: 'none,adaround,gptq',
    ptqIters: String(DEFAULT_PTQ_ITERS),
    wBits: '4',
    aBits: '8',
    ptqActRanges: 'auto',
    ptqDrop: '50',
    calib: '128',
    eval: 'rest',
    ptqInputs: 'quantized-prefix',
    bnReestimate: '0',
  },
  notes:
    'Academic preset, seed 0; lists multiply (--ptq-iters, --ptq-act-ranges and --ptq-drop only where the method uses them). A list of --ptq-iters (e.g. 50,100,200) is the iterations-versus-accuracy curve: one row per count.',
};

export const BENCH_PTQ_MEMORY_CLI: CliSpec = {
  command: 'npm run bench:ptq-memory --',
  config: ['dataset', 'ptq', 'ptqIters', 'calib', 'eval', 'wBits'],
  lists: [],
  run: ['engine'],
  cli: ['labels'],
  defaults: {
    dataset: SAMPLE,
    labels: CLASS_INDEX,
    ptq: 'gptq',
    ptqIters: '300',
    calib: '128',
    eval: '8',
    wBits: '4',
  },
  notes: 'Peak memory of reconstruction on ResNet-18 with seeded synthetic weights, Academic preset, A8.',
};

export const CALIB_COMPARE_CLI: CliSpec = {
  command: 'npx tsx scripts/calib-compare.ts',
  run: ['engine'],
  extra: {
    images: count('images', 'sample images calibrated on', 128),
    stride: count('stride', 'the sampled histogram pass takes every N-th value', SAMPLE_STRIDE),
  },
  notes: 'MobileNet-V2 on the sample images of ../shared/data.',
};

export const MAKE_MODELS_CLI: CliSpec = {
  command: 'npm run make-models --',
  extra: {
    out: { flag: 'out', arg: 'DIR', type: PATH, help: 'the folder to write the models to (created)' },
    seed: count('seed', 'the seed of the synthetic weights', 1, 0, 0xffffffff),
    only: {
      flag: 'only',
      arg: MODEL_REGISTRY.map((e) => e.id).join(','),
      type: { kind: 'enum', values: MODEL_REGISTRY.map((e) => e.id) },
      list: true,
      help: 'only these models (default: all)',
    },
  },
  required: ['out'],
  notes: 'Writes SYNTHETIC seeded models (exact architectures, not trained): for graph handling and timing only.',
};

export const PROFILE_CALIBRATION_CLI: CliSpec = {
  command: 'npx tsx scripts/profile-calibration.ts',
  config: ['model', 'dataset'],
  run: ['threads'],
  extra: {
    images: count('images', 'sample images of each pass', 64),
    rounds: count('rounds', 'rounds; the report gives their median', 3),
  },
  defaults: { model: MOBILENET, dataset: SAMPLE, threads: '1' },
};

export const PTQ_DIAG_CLI: CliSpec = {
  command: 'npx tsx scripts/ptq-diag.ts',
  config: ['calib', 'wBits', 'ptqIters'],
  lists: [],
  run: ['engine'],
  extra: {
    lr: { flag: 'lr', arg: 'X', type: NUMBER, help: "AdaRound's learning rate", default: '0.01' },
    lambda: { flag: 'lambda', arg: 'X', type: NUMBER, help: "AdaRound's rounding regulariser weight", default: '0.01' },
    layers: count('layers', 'at most this many layers', 1000),
    only: { flag: 'only', arg: 'NODE[,NODE…]', type: TEXT, list: true, help: 'only these weight nodes' },
    runs: {
      flag: 'runs',
      arg: 'ITERS:LR[:LAMBDA],…',
      type: TEXT,
      list: true,
      help: 'more AdaRound runs per layer with these settings',
    },
  },
  defaults: { engine: 'node', calib: '32', wBits: '4', ptqIters: '500' },
  notes: 'MobileNet-V2 on the sample images of ../shared/data, Academic preset, two engine threads.',
};

export const BENCH_BROWSER_CLI: CliSpec = {
  command: 'npm run bench:browser --',
  config: ['calib', 'eval'],
  lists: [],
  extra: {
    json: json('write the timings as JSON'),
    instantOnly: { flag: 'instant-only', type: FLAG, help: 'skip the full-run comparison' },
    prepare: count('prepare', 'time the first-visit preparation of N sample images (0 skips it)', 1000, 0, 1000),
  },
  defaults: { calib: '32', eval: '64' },
  notes: 'Needs /usr/bin/chromium and ../shared/data; builds dist/ when missing.',
};

export const BENCH_WEBGPU_CLI: CliSpec = {
  command: 'npm run bench:webgpu --',
  extra: {
    images: count('images', 'images of each WebGPU-against-wasm run', 128),
    checkImages: count('check-images', 'images of the correctness check', 4),
    forceGpu: { flag: 'force-gpu', type: FLAG, help: 'run on a software adapter too' },
    synthetic: { flag: 'synthetic', type: FLAG, help: 'check the tiny synthetic classifier as well' },
    noApp: { flag: 'no-app', type: FLAG, help: 'skip the runs in the built app' },
    noPlacement: { flag: 'no-placement', type: FLAG, help: 'skip the placement check of the graphs' },
    noMobilenet: { flag: 'no-mobilenet', type: FLAG, help: 'leave out MobileNet-V2' },
    json: json('write {adapter, fallbackNodes, placement, results} as JSON'),
  },
  notes: 'Needs /usr/bin/chromium; builds dist/ when missing.',
};

export const BENCH_TRANSFER_CLI: CliSpec = {
  command: 'npm run bench:transfer --',
  positionals: { arg: 'DIST', min: 0, max: 1 },
  notes: 'What a first visit downloads from the built site in DIST (default dist/, built when missing).',
};

export const MAKE_IMAGE_MANIFEST_CLI: CliSpec = {
  command: 'npm run make-image-manifest --',
  notes:
    'Rewrites src/lib/data/manifests/imagenet-sample.ts from ../shared/data (QP_SHARED_DATA overrides the folder).',
};

export const BENCH_DEPLOY_CLI: CliSpec = {
  command: 'npm run bench:deploy --',
  config: ['model', 'dataset', 'backend', 'calib', 'eval'],
  lists: ['backend'],
  run: ['engine', 'threads'],
  cli: ['labels'],
  extra: {
    images: count('images', 'evaluation images of the code comparison and the divergence finder', 8),
    speedRounds: count('speed-rounds', 'rounds of the deployed-versus-FP32 speed measurement (median)', 5),
    json: json('write the rows (one per preset) as JSON'),
  },
  defaults: {
    model: MOBILENET,
    dataset: SAMPLE,
    labels: CLASS_INDEX,
    backend: 'tensorrt,fbgemm,snpe,academic',
    calib: '128',
    eval: 'rest',
    engine: 'node',
  },
  notes: 'W8A8 per preset, seed 0, MobileNet-V2.',
};

/** Every script's command line, by its npm script name (or its file when it has none). */
export const SCRIPT_SPECS: Readonly<Record<string, CliSpec>> = {
  'bench:perf': BENCH_PERF_CLI,
  'bench:ptq': BENCH_PTQ_CLI,
  'bench:ptq-memory': BENCH_PTQ_MEMORY_CLI,
  'bench:deploy': BENCH_DEPLOY_CLI,
  'bench:browser': BENCH_BROWSER_CLI,
  'bench:webgpu': BENCH_WEBGPU_CLI,
  'bench:transfer': BENCH_TRANSFER_CLI,
  'make-models': MAKE_MODELS_CLI,
  'make-image-manifest': MAKE_IMAGE_MANIFEST_CLI,
  'scripts/calib-compare.ts': CALIB_COMPARE_CLI,
  'scripts/profile-calibration.ts': PROFILE_CALIBRATION_CLI,
  'scripts/ptq-diag.ts': PTQ_DIAG_CLI,
};
