/**
 * `npm run bench:calib`: the calibration methods of issue 12 on the real MobileNet-V2 at
 * full size (128 calibration / 872 evaluation images, seed 0), printed as one
 * method × bits × top-1 × time table. The integration test runs a few of these on a small
 * subset; this script gives the figures in docs/results.md.
 *
 *   npm run bench:calib -- [--engine node|wasm] [--only observers,cle,mixed] [--eval N]
 *
 * Times are wall seconds per configuration (shared FP32 / calibration work counted once
 * per group), so they depend on the machine's load.
 */
import { DiskCropStore, loadImageFolder } from '../lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../lib/data/preprocess.ts';
import { createNodeEngine } from '../lib/engine/node.ts';
import { resolveConfig } from '../lib/config/resolve.ts';
import type { ExperimentResult, RunInputs } from '../lib/experiment/types.ts';
import { runPipeline } from '../lib/pipeline/run.ts';
import type { ExperimentConfig } from '../lib/config/types.ts';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { OBSERVER_NAMES } from '../lib/quant/types.ts';
import { QpError } from '../lib/util/errors.ts';
import { configValue, parseCli, reportCliError, type CliSpec } from './options.ts';

const DATA = resolve(import.meta.dirname, '../../../shared/data');
/** the sample's 1,000 images less the 128 calibration images */
const FULL_EVAL = 872;

interface Row {
  method: string;
  configs: Partial<ExperimentConfig>[];
}

function rows(only: Set<string>): Row[] {
  const out: Row[] = [];
  if (only.has('observers')) {
    for (const backend of ['tensorrt', 'academic'] as const) {
      out.push({
        method: `${backend}, activation observer`,
        configs: OBSERVER_NAMES.map((aObserver) => ({ backend, aObserver })),
      });
    }
  }
  if (only.has('cle')) {
    const snpe = { backend: 'snpe' as const };
    out.push({ method: 'snpe', configs: [snpe, { ...snpe, biasCorrection: true }] });
    out.push({
      method: 'snpe +cle (ReLU6 → Relu·Min(6/s), absorption)',
      configs: [{ ...snpe, cle: true, biasCorrection: true }],
    });
    out.push({
      method: 'snpe +cle without absorption',
      configs: [{ ...snpe, cle: true, cleAbsorb: false, biasCorrection: true }],
    });
    out.push({
      method: 'snpe +cle, ReLU6 → ReLU',
      configs: [{ ...snpe, cle: true, cleRelu6: 'relu', biasCorrection: true }],
    });
  }
  if (only.has('mixed')) {
    const w4 = { backend: 'academic' as const, wBits: 4, wObserver: 'minmax' as const, aObserver: 'minmax' as const };
    out.push({
      method: 'academic minmax, layers kept at 8 bits',
      configs: [
        w4,
        { ...w4, layerBits: { Conv_2: 8 } },
        { ...w4, layerBits: { Conv_2: 8, Conv_9: 8, Conv_4: 8 } },
        { ...w4, layerBits: { Conv_2: 8, Conv_9: 8, Conv_4: 8, Conv_20: 8, Conv_7: 8 } },
      ],
    });
  }
  return out;
}

function label(r: ExperimentResult): string {
  const c = r.config;
  const bits = Object.keys(c.layerBits ?? {}).length;
  return [
    c.backend,
    `${c.wObserver}/${c.aObserver}`,
    c.cle ? '+cle' : '',
    c.biasCorrection ? '+bc' : '',
    bits ? `${bits} layers 8-bit` : '',
  ]
    .filter(Boolean)
    .join(' ');
}

const TABLES = ['observers', 'cle', 'mixed'] as const;

/** The command line of `npm run bench:calib`. */
export const BENCH_CALIB_CLI: CliSpec = {
  command: 'npm run bench:calib --',
  config: ['eval'],
  lists: [],
  run: ['engine'],
  extra: {
    only: {
      flag: 'only',
      arg: TABLES.join(','),
      type: { kind: 'enum', values: TABLES },
      list: true,
      help: 'only these parts of the table',
    },
  },
  defaults: { engine: 'node', eval: String(FULL_EVAL), only: TABLES.join(',') },
  notes:
    'MobileNet-V2 on the sample images of ../shared/data, 128 calibration images, seed 0; about an hour on two cores.',
};

export async function main(argv: string[]): Promise<number> {
  let engineKind: 'wasm' | 'node';
  let only: Set<string>;
  let evalN: number;
  try {
    const parsed = parseCli(BENCH_CALIB_CLI, argv);
    engineKind = parsed.values.engine as 'wasm' | 'node';
    only = new Set(parsed.values.only as string[]);
    const evalCount = configValue(parsed, 'eval');
    evalN = evalCount === 'rest' ? FULL_EVAL : (evalCount as number);
    if (evalN > FULL_EVAL)
      throw new QpError('ARG_INVALID', `--eval must be a whole number from 1 to ${FULL_EVAL}, got "${evalN}".`);
  } catch (e) {
    return reportCliError(e);
  }
  const engine = await createNodeEngine(engineKind);
  const inputs: RunInputs = {
    engine,
    modelBytes: new Uint8Array(await readFile(resolve(DATA, 'models/mobilenetv2-7-fp32.onnx'))),
    model: { id: 'mobilenet-v2', label: 'MobileNet-V2', preprocess: TORCHVISION_SPEC, classes: 1000 },
    dataset: await loadImageFolder(resolve(DATA, 'imagenet-sample'), resolve(DATA, 'imagenet_class_index.json')),
    cropStore: new DiskCropStore(),
  };
  const lines = [
    '| method | config | bits | top-1 | before fixes | drop | time (s) |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const row of rows(only)) {
    const configs = row.configs.map((c) => resolveConfig({ ...c, calib: 128, eval: evalN, seed: 0 }));
    const results = await runPipeline(configs, inputs);
    for (const r of results) {
      const pct = (x: number) => (100 * x).toFixed(2);
      const line = `| ${row.method} | ${label(r)} | W${r.config.wBits}A${r.config.aBits} | ${pct(r.quant.top1)} | ${r.beforeFixes ? pct(r.beforeFixes.top1) : ''} | ${pct(r.fp32.top1 - r.quant.top1)} | ${r.seconds.toFixed(0)} |`;
      lines.push(line);
      process.stderr.write(`${line}\n`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
