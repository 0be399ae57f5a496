/**
 * Command-line options of `npm run bench`, `npm run lessons` and every script, from three
 * tables: the config fields (config/schema.ts CONFIG_FIELDS: each field's flag, domain and
 * label), the run options (config/run-options.ts RUN_OPTIONS) and the command line's own
 * options (CLI_OPTIONS below: files, outputs, modes). A command names which of them it takes
 * (plus options of its own in the same form); parsing, checking, defaults and the --help
 * text come from the tables, so a flag means the same everywhere.
 * Throws QpError('ARG_INVALID') with one sentence on anything malformed, and CliHelp (the
 * usage text) on --help / -h; reportCliError turns either into output and an exit code (0 for
 * --help, 2 for a refusal), so every command answers them the same way.
 */
import { parseArgs } from 'node:util';
import { QpError, toErrorInfo } from '../lib/util/errors.ts';
import {
  CONFIG_FIELDS,
  describeDomain,
  fieldText,
  parseFieldText,
  type ConfigField,
  type FieldKind,
} from '../lib/config/schema.ts';
import { RUN_OPTIONS, type RunOptionField, type RunOptionName } from '../lib/config/run-options.ts';

/** What an option's value is: a config-style kind, a decimal number, a path, free text, or a switch without value. */
export type OptionKind =
  FieldKind | { kind: 'real'; min: number; max: number } | { kind: 'path' } | { kind: 'text' } | { kind: 'flag' };

export interface CliOption {
  flag: string;
  /** how the value looks in --help (none for a switch) */
  arg?: string;
  type: OptionKind;
  /** a comma list of values */
  list?: boolean;
  /** may be given more than once (the values are returned as a list, in order) */
  multiple?: boolean;
  help: string;
  default?: string | number | boolean;
}

/** the kinds of a path, a switch and free text, for a command's own options */
export const PATH = { kind: 'path' } as const;
export const FLAG = { kind: 'flag' } as const;
export const TEXT = { kind: 'text' } as const;

/** The command line's own options (not config fields, not run options). */
export const CLI_OPTIONS = {
  labels: { flag: 'labels', arg: 'FILE', type: PATH, help: 'class index (JSON) when the data folder has none' },
  json: {
    flag: 'json',
    arg: 'FILE',
    type: PATH,
    help: 'write the results as JSON (each record with its share link, url)',
  },
  links: { flag: 'links', type: FLAG, help: "print each config's share link (the app opens it to this run)" },
  export: {
    flag: 'export',
    arg: 'DIR',
    type: PATH,
    help: 'write deployable files per config (QDQ ONNX, ranges.json, backend range files)',
  },
  analyze: { flag: 'analyze', type: FLAG, help: 'also analyse why accuracy drops, layer by layer' },
  deploy: {
    flag: 'deploy',
    type: FLAG,
    help: "also run each config's integer export on onnxruntime's integer kernels (QDQ fusions on): deployed top-1/top-5, agreement with the simulation, first diverging layer (8-bit configs)",
  },
  fix: {
    flag: 'fix',
    arg: 'cle,bias-correction,bn-reestimate',
    type: { kind: 'enum', values: ['cle', 'bias-correction', 'bn-reestimate'] },
    list: true,
    help: 'same as --cle 1 / --bias-correction 1 / --bn-reestimate 1',
  },
  noFoldBn: { flag: 'no-fold-bn', type: FLAG, help: 'same as --fold-bn 0' },
  keepSensitive: {
    flag: 'keep-sensitive',
    arg: 'K[,K…]',
    type: { kind: 'int', min: 0, max: 10_000 },
    list: true,
    help: 'rank layers by sensitivity to --w-bits, keep the K most sensitive at 8 bits',
  },
  sensitivity: {
    flag: 'sensitivity',
    arg: 'N',
    type: { kind: 'int', min: 1, max: 1_000_000 },
    help: 'evaluation images of the sensitivity pass',
    default: 64,
  },
  only: { flag: 'only', arg: 'ID[,ID…]', type: TEXT, list: true, help: 'only these' },
  floatParent: {
    flag: 'float-parent',
    arg: 'FILE',
    type: PATH,
    help: 'the float model a quantized --model was made from: its FP32 top-1, the agreement, the per-layer comparison and the imported scheme re-simulated on it',
  },
  maxDrop: {
    flag: 'max-drop',
    arg: 'POINTS',
    type: { kind: 'real', min: 0, max: 100 },
    help: 'accuracy-aware search: the fewest layers kept at higher precision for a top-1 drop of at most POINTS',
  },
  noPrune: {
    flag: 'no-prune',
    type: FLAG,
    help: '--max-drop without its last pass (re-quantizing each kept layer the budget allows: one validation per kept layer), as the app runs it by default',
  },
  pareto: {
    flag: 'pareto',
    type: FLAG,
    help: 'size-versus-top-1 front over per-layer weight bits (2–8), each point with its share link',
  },
  rankImages: {
    flag: 'rank-images',
    arg: 'N',
    type: { kind: 'int', min: 1, max: 1_000_000 },
    help: 'evaluation images that rank layers in --max-drop and --pareto (the first ones of the evaluation split)',
    default: 128,
  },
  paretoPoints: {
    flag: 'pareto-points',
    arg: 'N',
    type: { kind: 'int', min: 1, max: 1000 },
    help: 'configurations of the --pareto front evaluated on every evaluation image',
    default: 8,
  },
} as const satisfies Record<string, CliOption>;

export type CliOptionName = keyof typeof CLI_OPTIONS;

/** What a command takes. */
export interface CliSpec {
  /** e.g. 'npm run bench --' */
  command: string;
  /** config fields by name ('all' for every field); inputs (--model, --data) are always paths */
  config?: 'all' | readonly string[];
  run?: readonly RunOptionName[];
  cli?: readonly CliOptionName[];
  /** the command's own options, by the name their value is returned under */
  extra?: Readonly<Record<string, CliOption>>;
  /** options that must be given (by returned name) */
  required?: readonly string[];
  /**
   * this command's own defaults, as command-line text parsed like a given value, by config
   * field name or option name (e.g. { wBits: '4', engine: 'node' })
   */
  defaults?: Readonly<Record<string, string>>;
  /** config fields (by name) that take a comma list; every field when absent, the others take one value */
  lists?: readonly string[];
  /** the bare arguments it takes (e.g. { arg: 'DIST', min: 1, max: 1 }); none when absent */
  positionals?: { arg: string; min: number; max: number };
  /** lines printed under the options in --help */
  notes?: string;
}

export interface ParsedCli {
  /** every config flag given, with its checked values (one unless the flag took a list) */
  config: Map<ConfigField, unknown[]>;
  /** run options, CLI options and the command's own options, by name, checked (defaults applied) */
  values: Record<string, unknown>;
  /** the bare arguments, when the spec takes them */
  positionals: string[];
}

/** What parseCli throws for --help / -h: the usage text, to print on stdout with exit code 0. */
export class CliHelp extends QpError {
  constructor(text: string) {
    super('ARG_INVALID', text);
    this.name = 'CliHelp';
  }
}

function bad(msg: string): never {
  throw new QpError('ARG_INVALID', msg);
}

/** The items of a comma list (empty items dropped); an empty list is refused. */
export function splitList(flag: string, v: string): string[] {
  const items = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) bad(`--${flag} got an empty list "${v}".`);
  return items;
}

/** One value of an option of the given kind, checked; a full sentence when it is not one. */
export function parseOptionValue(flag: string, type: OptionKind, raw: string): unknown {
  if (type.kind === 'path' || type.kind === 'text') return raw;
  if (type.kind === 'flag') return true;
  if (type.kind === 'real') {
    const x = /^[-+]?(\d+\.?\d*|\.\d+)$/.test(raw.trim()) ? Number(raw) : NaN;
    if (!(x >= type.min && x <= type.max))
      bad(`--${flag} must be a number from ${type.min} to ${type.max}, got "${raw}".`);
    return x;
  }
  const v = parseFieldText(type, raw);
  if (v !== undefined) return v;
  if (type.kind === 'enum') bad(`Unknown --${flag} "${raw}". Choose one of: ${type.values.join(', ')}.`);
  if (type.kind === 'bool') bad(`--${flag} must be 1 or 0 (true or false), got "${raw}".`);
  return bad(`--${flag} must be ${describeDomain(type)}, got "${raw}".`);
}

/**
 * One command-line value of a config field, checked against the field's schema domain
 * (`--eval rest` means every image the calibration split leaves).
 */
export function parseFieldValue(f: ConfigField, raw: string): unknown {
  if (f.name === 'eval' && raw === 'rest') return 'rest';
  if (f.name === 'eval' && !/^\d+$/.test(raw)) bad(`--eval must be a whole number or "rest", got "${raw}".`);
  return parseOptionValue(f.cli.flag, f.type, raw);
}

/** The command-line text of a config value (the inverse of parseFieldValue). */
export function formatFieldValue(f: ConfigField, v: unknown): string {
  return fieldText(f.type, v);
}

function configFields(spec: CliSpec): ConfigField[] {
  if (!spec.config) return [];
  if (spec.config === 'all') return [...CONFIG_FIELDS];
  return spec.config.map((n) => {
    const f = CONFIG_FIELDS.find((x) => x.name === n);
    if (!f) throw new Error(`No config field "${n}".`);
    return f;
  });
}

/** Every non-config option of a command, by returned name. */
function otherOptions(spec: CliSpec): [string, CliOption][] {
  const run = (spec.run ?? []).map((n): [string, CliOption] => {
    const o = RUN_OPTIONS.find((x) => x.name === n)!;
    const cli: RunOptionField['cli'] = 'cli' in o ? o.cli : undefined;
    if (!cli) throw new Error(`Run option ${n} has no command-line form.`);
    return [n, { flag: cli.flag, arg: cli.arg, type: cli.type, help: o.label.toLowerCase(), default: cli.default }];
  });
  const cli = (spec.cli ?? []).map((n): [string, CliOption] => [n, CLI_OPTIONS[n]]);
  const own = spec.defaults ?? {};
  return [...run, ...cli, ...Object.entries(spec.extra ?? {})].map(([n, o]) => [
    n,
    own[n] !== undefined ? { ...o, default: own[n] } : o,
  ]);
}

/** A default given in a spec for something the command does not take is a mistake in the spec. */
function checkDefaults(spec: CliSpec, fields: ConfigField[], others: [string, CliOption][]): void {
  for (const n of Object.keys(spec.defaults ?? {}))
    if (!fields.some((f) => f.name === n) && !others.some(([o]) => o === n))
      throw new Error(`${spec.command}: a default for "${n}", which the command does not take.`);
}

function optionLine(o: CliOption): string {
  const head = `  --${o.flag}${o.arg ? ` ${o.arg}` : ''}`;
  const def = o.default !== undefined ? ` (default ${String(o.default)})` : '';
  return `${head.padEnd(40)} ${o.help}${def}`;
}

function fieldLine(f: ConfigField, single: boolean, own?: string): string {
  const def =
    own !== undefined
      ? own
      : f.name === 'eval'
        ? 'rest'
        : f.default === 'preset'
          ? 'from the backend preset'
          : fieldText(f.type, f.default) || 'none';
  // a flag that takes one value here is shown without its list form (N[,N…] → N)
  const head = `  --${f.cli.flag} ${single ? f.cli.arg.replace(/\[,[^\]]*\]$/, '') : f.cli.arg}`;
  const side = f.group === 'weights' ? ' (weights)' : f.group === 'activations' ? ' (activations)' : '';
  return `${head.padEnd(40)} ${f.label}${side}; default ${def}`;
}

/** Whether a config flag takes one value in this command (not a comma list). */
function takesOne(spec: CliSpec, f: ConfigField): boolean {
  return !!f.cliSingle || (spec.lists !== undefined && !spec.lists.includes(f.name));
}

function configHeading(spec: CliSpec, values: ConfigField[]): string {
  const lists = spec.lists
    ? spec.lists.length
      ? `${spec.lists.map(flagOf).join(', ')} take a comma list, the others one value`
      : 'one value each'
    : 'each takes a comma list; lists multiply into one run per combination';
  const bools = values.some((f) => f.type.kind === 'bool') ? '; 1|0 flags also take true|false' : '';
  return `Config flags (${lists}${bools}):`;
}

function flagOf(name: string): string {
  return `--${CONFIG_FIELDS.find((f) => f.name === name)!.cli.flag}`;
}

const HELP: CliOption = { flag: 'help', type: FLAG, help: 'print this text and exit (also -h)' };

function positionalText(p: NonNullable<CliSpec['positionals']>): string {
  const one = p.min === 0 ? `[${p.arg}]` : p.arg;
  return p.max > 1 ? `${one}…` : one;
}

/** The --help text of a command. */
export function usage(spec: CliSpec): string {
  const fields = configFields(spec);
  // an input the command has a default for is an option, not a part of the usage line
  const inputs = fields.filter((f) => f.cli.role === 'input' && spec.defaults?.[f.name] === undefined);
  const values = fields.filter((f) => f.cli.role === 'value');
  const optionalInputs = fields.filter((f) => f.cli.role === 'input' && spec.defaults?.[f.name] !== undefined);
  const required = new Set(spec.required ?? []);
  const others = otherOptions(spec);
  const head = [
    `usage: ${spec.command}`,
    ...inputs.filter((f) => !f.cli.optional).map((f) => `--${f.cli.flag} ${f.cli.arg}`),
    ...others.filter(([n]) => required.has(n)).map(([, o]) => `--${o.flag}${o.arg ? ` ${o.arg}` : ''}`),
    '[options]',
    ...(spec.positionals ? [positionalText(spec.positionals)] : []),
  ].join(' ');
  const parts = [head];
  if (values.length) {
    parts.push(
      configHeading(spec, values),
      ...values.map((f) => fieldLine(f, takesOne(spec, f), spec.defaults?.[f.name])),
    );
  }
  // required options are in the usage line and, with what they mean, here
  parts.push(
    'Options:',
    ...optionalInputs.map((f) =>
      optionLine({ flag: f.cli.flag, arg: f.cli.arg, type: PATH, help: f.label, default: spec.defaults![f.name] }),
    ),
    ...inputs
      .filter((f) => f.cli.optional)
      .map((f) =>
        optionLine({ flag: f.cli.flag, arg: f.cli.arg, type: PATH, help: `${f.label} (the config keeps its sha256)` }),
      ),
    ...others.map(([, o]) => optionLine(o)),
    optionLine(HELP),
  );
  if (spec.notes) parts.push(spec.notes);
  return parts.join('\n');
}

/** Parses `argv` for a command; --help throws ARG_INVALID carrying the usage text. */
export function parseCli(spec: CliSpec, argv: string[]): ParsedCli {
  const fields = configFields(spec);
  const others = otherOptions(spec);
  checkDefaults(spec, fields, others);
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const f of fields) options[f.cli.flag] = { type: 'string' };
  for (const [, o] of others)
    options[o.flag] = {
      type: o.type.kind === 'flag' ? 'boolean' : 'string',
      ...(o.multiple ? { multiple: true } : {}),
    };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, strict: true, allowPositionals: spec.positionals !== undefined, options });
  } catch (e) {
    const msg = (e as Error).message;
    const unknown = (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && /'(-[^']*)'/.exec(msg);
    if (unknown) bad(`Unknown option ${unknown[1]}: ${spec.command} does not take it (see --help).`);
    bad(`${msg.split('\n')[0].replace(/\. This command does not take positional arguments$/, '')} (see --help).`);
  }
  const v = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (v.help) throw new CliHelp(usage(spec));
  const pos = spec.positionals;
  if (pos && (parsed.positionals.length < pos.min || parsed.positionals.length > pos.max)) {
    const want = pos.min === pos.max ? `exactly ${pos.min}` : `${pos.min} to ${pos.max}`;
    bad(`Give ${want} ${pos.arg} (got ${parsed.positionals.length}; see --help).`);
  }
  const config = new Map<ConfigField, unknown[]>();
  for (const f of fields) {
    const text = (v[f.cli.flag] as string | undefined) ?? spec.defaults?.[f.name];
    if (text === undefined) continue;
    if (f.cli.role === 'input') config.set(f, [text]);
    else {
      const raw = takesOne(spec, f) ? [text.trim()] : splitList(f.cli.flag, text);
      config.set(
        f,
        raw.map((r) => parseFieldValue(f, r)),
      );
    }
  }
  const values: Record<string, unknown> = {};
  for (const [name, o] of others) {
    const own = spec.defaults?.[name];
    const given = v[o.flag] ?? (own !== undefined ? (o.multiple ? [own] : own) : undefined);
    if (given === undefined) {
      if (o.default !== undefined) values[name] = o.list ? [o.default] : o.default;
      else if (o.type.kind === 'flag') values[name] = false;
      continue;
    }
    if (o.type.kind === 'flag') values[name] = true;
    else if (o.multiple) values[name] = (given as string[]).map((r) => parseOptionValue(o.flag, o.type, r));
    else if (o.list) values[name] = splitList(o.flag, given as string).map((r) => parseOptionValue(o.flag, o.type, r));
    else values[name] = parseOptionValue(o.flag, o.type, given as string);
  }
  for (const name of spec.required ?? []) {
    const f = fields.find((x) => x.name === name);
    const o = others.find(([n]) => n === name)?.[1];
    const given = f ? config.has(f) : values[name] !== undefined;
    if (!given) {
      const flag = f ? `--${f.cli.flag} ${f.cli.arg}` : `--${o!.flag}${o!.arg ? ` ${o!.arg}` : ''}`;
      bad(`Missing ${flag} (see --help).`);
    }
  }
  return { config, values, positionals: parsed.positionals };
}

/**
 * The exit code of a command that failed with `e`, after printing it: --help's usage on
 * stdout (0), a refusal as `error [CODE]: message` on stderr (2 when the user can fix it, 1 otherwise).
 */
export function reportCliError(
  e: unknown,
  log: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
): number {
  if (e instanceof CliHelp) {
    log(e.message);
    return 0;
  }
  const info = toErrorInfo(e);
  process.stderr.write(`error [${info.code}]: ${info.message}\n`);
  return info.userError ? 2 : 1;
}

/**
 * parseCli for a script whose body runs at its top level: prints --help and exits 0, or
 * prints the refusal and exits 2, so the script never starts on arguments it cannot use.
 */
export function parseCliOrExit(spec: CliSpec, argv: string[] = process.argv.slice(2)): ParsedCli {
  try {
    return parseCli(spec, argv);
  } catch (e) {
    process.exit(reportCliError(e));
  }
}

/** The one value of a config flag (given or the command's default), or undefined. */
export function configValue(parsed: ParsedCli, name: string): unknown {
  return configValues(parsed, name)?.[0];
}

/** Every value of a config flag's list (given or the command's default), or undefined. */
export function configValues(parsed: ParsedCli, name: string): unknown[] | undefined {
  return [...parsed.config].find(([f]) => f.name === name)?.[1];
}
