/**
 * Command-line arguments of `npm run bench`, parsed into the cartesian product of
 * configs. The config flags, their domains and the `--help` text come from the config
 * schema (config/schema.ts); every config flag takes a comma list, and lists multiply
 * (`--backend tensorrt,snpe --w-bits 8,4` is four runs).
 * Throws QpError('ARG_INVALID') with a one-line message on anything malformed.
 */
import { parseArgs } from 'node:util';
import { QpError } from '../lib/util/errors.ts';
import type { ExperimentConfig } from '../lib/config/types.ts';
import {
  CONFIG_FIELDS,
  describeDomain,
  fieldText,
  inDomain,
  parseBitsMapText,
  type ConfigField,
} from '../lib/config/schema.ts';
import { resolveConfig } from '../lib/config/resolve.ts';

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
  preprocess?: string;
  /** square input size for models whose height/width are symbolic */
  inputSize?: number;
  analyze: boolean;
  /** keep the K layers most sensitive to wBits at 8 bits (chosen by a sensitivity pass); a list multiplies the configs */
  keepSensitive?: number[];
  /** images of the evaluation split the sensitivity pass uses (default 64) */
  sensitivity?: number;
  /** how cle treats ReLU6: per-channel clip (default), replace by ReLU, or keep the clip at 6 */
  cleRelu6?: 'clip' | 'relu' | 'keep';
  /** whether cle absorbs high biases (default yes) */
  cleAbsorb?: boolean;
  /** every combination to run; model/dataset ids are filled in once the inputs are read */
  configs: BenchConfig[];
}

/** The config a BenchConfig stands for once the folder's image count is known. */
export function withImageCount(c: BenchConfig, images: number): ExperimentConfig {
  return { ...c, eval: c.eval === 'rest' ? images - c.calib : c.eval };
}

const VALUE_FIELDS = CONFIG_FIELDS.filter((f) => f.cli.role === 'value');
const INPUT_FIELDS = CONFIG_FIELDS.filter((f) => f.cli.role === 'input');

/** Fields the CLI multiplied in this order before the schema existed; kept so result tables keep their row order. */
const PRODUCT_FIRST = ['backend', 'wBits', 'aBits', 'wObserver', 'aObserver'];
const PRODUCT_ORDER = [
  ...PRODUCT_FIRST.map((n) => VALUE_FIELDS.find((f) => f.name === n)!),
  ...VALUE_FIELDS.filter((f) => !PRODUCT_FIRST.includes(f.name)),
];

/** Options that are not config fields. */
const RUN_OPTIONS = `  --labels FILE            class index (JSON) when the folder has none
  --fix cle,bias-correction,bn-reestimate   same as --cle 1 / --bias-correction 1 / --bn-reestimate 1
  --cle-relu6 clip|relu|keep  how cle treats ReLU6: Relu → per-channel Min (exact, default),
                           replace by ReLU, or keep the clip at 6
  --cle-absorb 1|0         whether cle absorbs high biases into the next layer (default 1)
  --keep-sensitive K[,K…]  rank layers by sensitivity to --w-bits, keep the K most sensitive at 8 bits
  --sensitivity N          evaluation images of the sensitivity pass (default 64)
  --no-fold-bn             same as --fold-bn 0
  --analyze                also analyse why accuracy drops, layer by layer
  --engine wasm|node       onnxruntime build to run on (default wasm)
  --threads N              engine threads
  --preprocess torchvision|efficientnet-lite   preprocessing of a user model
  --input-size N           square input size for models with symbolic height/width
  --json FILE              write the results as JSON (each record with its share link, url)
  --links                  print each config's share link (the app opens it to this run)
  --export DIR             write deployable files per config (QDQ ONNX, ranges.json, backend range files)`;

function flagLine(f: ConfigField): string {
  const def =
    f.name === 'eval'
      ? 'rest'
      : f.default === 'preset'
        ? 'from the backend preset'
        : fieldText(f.type, f.default) || 'none';
  const head = `  --${f.cli.flag} ${f.cli.arg}`;
  return `${head.padEnd(40)} ${f.label}${f.group === 'weights' ? ' (weights)' : f.group === 'activations' ? ' (activations)' : ''}; default ${def}`;
}

function enumLine(title: string, name: string): string {
  const t = CONFIG_FIELDS.find((f) => f.name === name)!.type;
  return `${title}: ${t.kind === 'enum' ? t.values.join(' ') : ''}`;
}

export const USAGE = `usage: npm run bench -- ${INPUT_FIELDS.map((f) => `--${f.cli.flag} ${f.cli.arg}`).join(' ')} [options]
Config flags (each takes a comma list; lists multiply into one run per combination; 1|0 flags also take true|false):
${VALUE_FIELDS.map(flagLine).join('\n')}
Other options:
${RUN_OPTIONS}
${enumLine('backends', 'backend')}
${enumLine('observers', 'wObserver')}`;

function bad(msg: string): never {
  throw new QpError('ARG_INVALID', msg);
}

function list(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const items = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) bad(`Empty list "${v}".`);
  return items;
}

function int(name: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v)) bad(`--${name} must be a whole number, got "${v}".`);
  const n = Number(v);
  if (n < min || n > max) bad(`--${name} must be between ${min} and ${max}, got ${n}.`);
  return n;
}

function oneOf<T extends string>(name: string, v: string, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) bad(`Unknown --${name} "${v}". Choose one of: ${allowed.join(', ')}.`);
  return v as T;
}

/** One command-line value of a config field, checked against the field's schema domain. */
export function parseFieldValue(f: ConfigField, raw: string): unknown {
  const flag = f.cli.flag;
  if (f.name === 'eval' && raw === 'rest') return 'rest';
  switch (f.type.kind) {
    case 'bool':
      if (raw === '1' || raw === 'true') return true;
      if (raw === '0' || raw === 'false') return false;
      return bad(`--${flag} must be 1 or 0 (true or false), got "${raw}".`);
    case 'int':
      if (f.name === 'eval' && !/^\d+$/.test(raw)) bad(`--eval must be a whole number or "rest", got "${raw}".`);
      return int(flag, raw, f.type.min, f.type.max);
    case 'enum':
      return oneOf(flag, raw, f.type.values);
    case 'string':
      if (raw.length > f.type.maxLength) bad(`--${flag} must be at most ${f.type.maxLength} characters long.`);
      return raw;
    case 'bitsMap': {
      const m = parseBitsMapText(raw);
      if (!m || !inDomain(f.type, m)) bad(`--${flag} must be ${describeDomain(f.type)}, got "${raw}".`);
      return m;
    }
  }
}

/** The command-line text of a config value (the inverse of parseFieldValue). */
export function formatFieldValue(f: ConfigField, v: unknown): string {
  return fieldText(f.type, v);
}

function product(lists: [ConfigField, unknown[]][]): Map<ConfigField, unknown>[] {
  let out: Map<ConfigField, unknown>[] = [new Map()];
  for (const [f, values] of lists) out = out.flatMap((m) => values.map((v) => new Map(m).set(f, v)));
  return out;
}

export function parseBenchArgs(argv: string[]): BenchArgs {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    labels: { type: 'string' },
    json: { type: 'string' },
    export: { type: 'string' },
    engine: { type: 'string' },
    threads: { type: 'string' },
    preprocess: { type: 'string' },
    'input-size': { type: 'string' },
    fix: { type: 'string' },
    analyze: { type: 'boolean' },
    links: { type: 'boolean' },
    'no-fold-bn': { type: 'boolean' },
    'keep-sensitive': { type: 'string' },
    sensitivity: { type: 'string' },
    'cle-relu6': { type: 'string' },
    'cle-absorb': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const f of CONFIG_FIELDS) options[f.cli.flag] = { type: 'string' };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, strict: true, allowPositionals: false, options });
  } catch (e) {
    bad(`${(e as Error).message.split('\n')[0]} (see --help).`);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const str = (k: string) => v[k] as string | undefined;
  if (v.help) throw new QpError('ARG_INVALID', USAGE);
  if (!v.model) bad('Missing --model FILE (an ONNX image classifier).');
  if (!v.data) bad('Missing --data DIR (a folder of images named by WordNet id).');

  // Shorthands of the first release, kept so existing scripts keep working.
  const shorthand = new Map<string, unknown[]>();
  for (const fix of list(str('fix')) ?? []) {
    const name = { cle: 'cle', 'bias-correction': 'biasCorrection', 'bn-reestimate': 'bnReestimate' }[
      oneOf('fix', fix, ['cle', 'bias-correction', 'bn-reestimate'] as const)
    ];
    shorthand.set(name, [true]);
  }
  if (v['no-fold-bn']) shorthand.set('foldBn', [false]);

  const lists: [ConfigField, unknown[]][] = [];
  for (const f of PRODUCT_ORDER) {
    const text = str(f.cli.flag);
    const raw = f.cliSingle && text !== undefined ? [text.trim()] : list(text);
    const short = shorthand.get(f.name);
    if (raw && short)
      bad(`--${f.cli.flag} and its shorthand (--fix or --no-fold-bn) were both given; use one of them.`);
    if (raw) lists.push([f, raw.map((r) => parseFieldValue(f, r))]);
    else if (short) lists.push([f, short]);
  }
  const engine = str('engine') ? oneOf('engine', str('engine')!, ['wasm', 'node'] as const) : 'wasm';
  const threads = str('threads') ? int('threads', str('threads')!, 1, 64) : undefined;
  const inputSize = str('input-size') ? int('input-size', str('input-size')!, 8, 4096) : undefined;
  if (str('preprocess')) oneOf('preprocess', str('preprocess')!, ['torchvision', 'efficientnet-lite'] as const);
  const keepSensitive = list(str('keep-sensitive'))?.map((k) => int('keep-sensitive', k, 0, 10_000));
  const sensitivity = str('sensitivity') ? int('sensitivity', str('sensitivity')!, 1, 1_000_000) : undefined;
  if (keepSensitive !== undefined && str('layer-bits') !== undefined)
    bad(
      'Give either --layer-bits or --keep-sensitive, not both: --keep-sensitive chooses the layer bit widths itself.',
    );
  const cleRelu6 = str('cle-relu6')
    ? oneOf('cle-relu6', str('cle-relu6')!, ['clip', 'relu', 'keep'] as const)
    : undefined;
  const cleAbsorb = str('cle-absorb')
    ? oneOf('cle-absorb', str('cle-absorb')!, ['1', '0'] as const) === '1'
    : undefined;

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
      eval: evalCount === 'rest' ? undefined : evalCount,
    });
    return { ...cfg, eval: evalCount };
  });
  return {
    model: v.model as string,
    data: v.data as string,
    labels: str('labels'),
    json: str('json'),
    links: !!v.links,
    engine,
    threads,
    preprocess: str('preprocess'),
    inputSize,
    analyze: !!v.analyze,
    keepSensitive,
    sensitivity,
    cleRelu6,
    cleAbsorb,
    exportDir: str('export'),
    configs,
  };
}
