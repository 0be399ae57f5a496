/**
 * Command-line arguments of `npm run bench`, parsed into the cartesian product of
 * configs. The flags, their domains and the `--help` text come from the tables that
 * src/cli/options.ts reads (config schema, run options, the CLI's own options); every
 * config flag takes a comma list, and lists multiply (`--backend tensorrt,snpe --w-bits 8,4`
 * is four runs).
 * Throws QpError('ARG_INVALID') with a one-line message on anything malformed.
 */
import { QpError } from '../lib/util/errors.ts';
import type { ExperimentConfig } from '../lib/config/types.ts';
import { CONFIG_FIELDS, type ConfigField } from '../lib/config/schema.ts';
import { resolveConfig } from '../lib/config/resolve.ts';
import { parseCli, usage, type CliSpec } from './options.ts';

export { formatFieldValue, parseFieldValue } from './options.ts';

/** How many evaluation images: a count, or every image the calibration split leaves. */
export type EvalCount = number | 'rest';

/** A resolved config whose evaluation count may still be "the rest of the images". */
export type BenchConfig = Omit<ExperimentConfig, 'eval'> & { eval: EvalCount };

export interface BenchArgs {
  model: string;
  data: string;
  labels?: string;
  json?: string;
  /** --export DIR: one sub-folder of deployable files per config */
  exportDir?: string;
  /** print each config's share link under the table */
  links: boolean;
  engine: 'wasm' | 'node';
  threads?: number;
  evalBatch?: number;
  /** --deploy: each record gets `deployed` (the run on onnxruntime's integer kernels) */
  deploy: boolean;
  /** analyse each config on this many evaluation images (--analyze) */
  analyze?: number;
  /** keep the K layers most sensitive to wBits at 8 bits (chosen by a sensitivity pass); a list multiplies the configs */
  keepSensitive?: number[];
  /** images of the evaluation split the sensitivity pass uses */
  sensitivity: number;
  /** every combination to run; model/dataset ids are filled in once the inputs are read */
  configs: BenchConfig[];
  /** config fields given on the command line (an imported scheme sets the others) */
  given: Set<string>;
  /** --imported-scheme FILE: the configs re-simulate this quantized file's scheme on --model */
  importedScheme?: string;
  /** --float-parent FILE: the float model a quantized --model was made from */
  floatParent?: string;
  /** --max-drop: largest top-1 drop of the accuracy-aware search, in points */
  maxDrop?: number;
  /** --no-prune: leave out the search's re-quantizing pass */
  noPrune: boolean;
  pareto: boolean;
  rankImages: number;
  paretoPoints: number;
}

/**
 * The importedScheme of configs parsed with --imported-scheme FILE until the file is read
 * (cli/bench.ts puts its sha256 there, withSchemeId): a valid id that names no file.
 */
export const SCHEME_PENDING = `sha256:${'0'.repeat(64)}`;

/** The config a BenchConfig stands for once the folder's image count is known. */
export function withImageCount(c: BenchConfig, images: number): ExperimentConfig {
  return { ...c, eval: c.eval === 'rest' ? images - c.calib : c.eval };
}

const VALUE_FIELDS = CONFIG_FIELDS.filter((f) => f.cli.role === 'value');

/** Fields the CLI multiplied in this order before the schema existed; kept so result tables keep their row order. */
const PRODUCT_FIRST = ['backend', 'wBits', 'aBits', 'wObserver', 'aObserver'];
const PRODUCT_ORDER: ConfigField[] = [
  ...PRODUCT_FIRST.map((n) => VALUE_FIELDS.find((f) => f.name === n)!),
  ...VALUE_FIELDS.filter((f) => !PRODUCT_FIRST.includes(f.name)),
];

export const BENCH_CLI: CliSpec = {
  command: 'npm run bench --',
  config: 'all',
  run: ['engine', 'threads', 'evalBatch', 'analysisImages'],
  cli: [
    'labels',
    'fix',
    'noFoldBn',
    'keepSensitive',
    'sensitivity',
    'analyze',
    'json',
    'links',
    'export',
    'deploy',
    'floatParent',
    'maxDrop',
    'noPrune',
    'pareto',
    'rankImages',
    'paretoPoints',
  ],
  notes: [
    `backends: ${enumValues('backend')}`,
    `observers: ${enumValues('wObserver')}`,
    'Sweeps: --jobs N|auto, --shard K/N, --jsonl FILE, --merge FILE [FILE…] (see docs/cli.md).',
  ].join('\n'),
};

function enumValues(name: string): string {
  const t = CONFIG_FIELDS.find((f) => f.name === name)!.type;
  return t.kind === 'enum' ? t.values.join(' ') : '';
}

export const USAGE = usage(BENCH_CLI);

function bad(msg: string): never {
  throw new QpError('ARG_INVALID', msg);
}

function product(lists: [ConfigField, unknown[]][]): Map<ConfigField, unknown>[] {
  let out: Map<ConfigField, unknown>[] = [new Map()];
  for (const [f, values] of lists) out = out.flatMap((m) => values.map((v) => new Map(m).set(f, v)));
  return out;
}

export function parseBenchArgs(argv: string[]): BenchArgs {
  const { config, values: o } = parseCli(BENCH_CLI, argv);
  const input = (name: string) => [...config].find(([f]) => f.name === name)?.[1][0] as string | undefined;
  const model = input('model');
  const data = input('dataset');
  const importedScheme = input('importedScheme');
  if (!model) bad('Missing --model FILE (an ONNX image classifier).');
  if (!data) bad('Missing --data DIR (a folder of images named by WordNet id).');

  // Shorthands of the first release, kept so existing scripts keep working.
  const shorthand = new Map<string, unknown[]>();
  for (const fix of (o.fix as string[] | undefined) ?? []) {
    const name = { cle: 'cle', 'bias-correction': 'biasCorrection', 'bn-reestimate': 'bnReestimate' }[fix]!;
    shorthand.set(name, [true]);
  }
  if (o.noFoldBn) shorthand.set('foldBn', [false]);

  const lists: [ConfigField, unknown[]][] = [];
  for (const f of PRODUCT_ORDER) {
    const given = config.get(f);
    const short = shorthand.get(f.name);
    if (given && short)
      bad(`--${f.cli.flag} and its shorthand (--fix or --no-fold-bn) were both given; use one of them.`);
    if (given) lists.push([f, given]);
    else if (short) lists.push([f, short]);
  }
  const keepSensitive = o.keepSensitive as number[] | undefined;
  if (keepSensitive !== undefined && lists.some(([f]) => f.name === 'layerBits'))
    bad(
      'Give either --layer-bits or --keep-sensitive, not both: --keep-sensitive chooses the layer bit widths itself.',
    );

  const configs: BenchConfig[] = product(lists).map((values) => {
    const overrides: Record<string, unknown> = {};
    let evalCount: EvalCount = 'rest';
    for (const [f, value] of values) {
      if (f.name === 'eval') evalCount = value as EvalCount;
      else if (f.path.length === 2) overrides.placement = { ...(overrides.placement as object), [f.path[1]]: value };
      else overrides[f.path[0]] = value;
    }
    // The numeric count is checked with the rest; "rest" is checked once the image count is known.
    const cfg = resolveConfig({
      ...(overrides as Partial<ExperimentConfig>),
      ...(importedScheme ? { importedScheme: SCHEME_PENDING } : {}),
      eval: evalCount === 'rest' ? undefined : evalCount,
    });
    return { ...cfg, eval: evalCount };
  });
  const floatParent = o.floatParent as string | undefined;
  const maxDrop = o.maxDrop as number | undefined;
  const pareto = o.pareto as boolean;
  if (floatParent && importedScheme)
    bad(
      '--float-parent goes with a quantized --model, --imported-scheme with a float --model (the parent); give one of them.',
    );
  if ((maxDrop !== undefined || pareto) && (keepSensitive || o.export))
    bad('--max-drop and --pareto choose layer bit widths themselves; leave out --keep-sensitive and --export.');
  if ((maxDrop !== undefined || pareto) && o.deploy)
    bad('--deploy checks the configurations of a run; --max-drop and --pareto report a search, so leave out --deploy.');
  return {
    model,
    data,
    importedScheme,
    floatParent,
    maxDrop,
    noPrune: o.noPrune as boolean,
    pareto,
    rankImages: o.rankImages as number,
    paretoPoints: o.paretoPoints as number,
    given: new Set(lists.map(([f]) => f.name)),
    labels: o.labels as string | undefined,
    json: o.json as string | undefined,
    links: o.links as boolean,
    engine: o.engine as 'wasm' | 'node',
    threads: o.threads as number | undefined,
    evalBatch: o.evalBatch as number | undefined,
    analyze: o.analyze ? (o.analysisImages as number) : undefined,
    keepSensitive,
    sensitivity: o.sensitivity as number,
    exportDir: o.export as string | undefined,
    deploy: o.deploy as boolean,
    configs,
  };
}
