/**
 * Command-line options of `npm run bench`, `npm run lessons` and every script, from three
 * tables: the config fields (config/schema.ts CONFIG_FIELDS: each field's flag, domain and
 * label), the run options (config/run-options.ts RUN_OPTIONS) and the command line's own
 * options (CLI_OPTIONS below: files, outputs, modes). A command names which of them it takes
 * (plus options of its own in the same form); parsing, checking, defaults and the --help
 * text come from the tables, so a flag means the same everywhere.
 * Throws QpError('ARG_INVALID') with one sentence on anything malformed.
 */
import { parseArgs } from 'node:util';
import { QpError } from '../lib/util/errors.ts';
import {
  CONFIG_FIELDS,
  describeDomain,
  fieldText,
  parseFieldText,
  type ConfigField,
  type FieldKind,
} from '../lib/config/schema.ts';
import { RUN_OPTIONS, type RunOptionField, type RunOptionName } from '../lib/config/run-options.ts';

/** What an option's value is: a config-style kind, a path, free text, or a switch without value. */
export type OptionKind = FieldKind | { kind: 'path' } | { kind: 'text' } | { kind: 'flag' };

export interface CliOption {
  flag: string;
  /** how the value looks in --help (none for a switch) */
  arg?: string;
  type: OptionKind;
  /** a comma list of values */
  list?: boolean;
  help: string;
  default?: string | number | boolean;
}

const PATH = { kind: 'path' } as const;
const FLAG = { kind: 'flag' } as const;
const TEXT = { kind: 'text' } as const;

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
  /** lines printed under the options in --help */
  notes?: string;
}

export interface ParsedCli {
  /** every config flag given, with its checked values (one unless the flag took a list) */
  config: Map<ConfigField, unknown[]>;
  /** run options, CLI options and the command's own options, by name, checked (defaults applied) */
  values: Record<string, unknown>;
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
  return [...run, ...cli, ...Object.entries(spec.extra ?? {})];
}

function optionLine(o: CliOption): string {
  const head = `  --${o.flag}${o.arg ? ` ${o.arg}` : ''}`;
  const def = o.default !== undefined ? ` (default ${String(o.default)})` : '';
  return `${head.padEnd(40)} ${o.help}${def}`;
}

function fieldLine(f: ConfigField): string {
  const def =
    f.name === 'eval'
      ? 'rest'
      : f.default === 'preset'
        ? 'from the backend preset'
        : fieldText(f.type, f.default) || 'none';
  const head = `  --${f.cli.flag} ${f.cli.arg}`;
  const side = f.group === 'weights' ? ' (weights)' : f.group === 'activations' ? ' (activations)' : '';
  return `${head.padEnd(40)} ${f.label}${side}; default ${def}`;
}

/** The --help text of a command. */
export function usage(spec: CliSpec): string {
  const fields = configFields(spec);
  const inputs = fields.filter((f) => f.cli.role === 'input');
  const values = fields.filter((f) => f.cli.role === 'value');
  const required = new Set(spec.required ?? []);
  const others = otherOptions(spec);
  const head = [
    `usage: ${spec.command}`,
    ...inputs.map((f) => `--${f.cli.flag} ${f.cli.arg}`),
    ...others.filter(([n]) => required.has(n)).map(([, o]) => `--${o.flag}${o.arg ? ` ${o.arg}` : ''}`),
    '[options]',
  ].join(' ');
  const parts = [head];
  if (values.length) {
    parts.push(
      'Config flags (each takes a comma list; lists multiply into one run per combination; 1|0 flags also take true|false):',
      ...values.map(fieldLine),
    );
  }
  const rest = others.filter(([n]) => !required.has(n));
  if (rest.length) parts.push('Options:', ...rest.map(([, o]) => optionLine(o)));
  if (spec.notes) parts.push(spec.notes);
  return parts.join('\n');
}

/** Parses `argv` for a command; --help throws ARG_INVALID carrying the usage text. */
export function parseCli(spec: CliSpec, argv: string[]): ParsedCli {
  const fields = configFields(spec);
  const others = otherOptions(spec);
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const f of fields) options[f.cli.flag] = { type: 'string' };
  for (const [, o] of others) options[o.flag] = { type: o.type.kind === 'flag' ? 'boolean' : 'string' };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, strict: true, allowPositionals: false, options });
  } catch (e) {
    bad(`${(e as Error).message.split('\n')[0]} (see --help).`);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) throw new QpError('ARG_INVALID', usage(spec));
  const config = new Map<ConfigField, unknown[]>();
  for (const f of fields) {
    const text = v[f.cli.flag] as string | undefined;
    if (text === undefined) continue;
    if (f.cli.role === 'input') config.set(f, [text]);
    else {
      const raw = f.cliSingle ? [text.trim()] : splitList(f.cli.flag, text);
      config.set(
        f,
        raw.map((r) => parseFieldValue(f, r)),
      );
    }
  }
  const values: Record<string, unknown> = {};
  for (const [name, o] of others) {
    const given = v[o.flag];
    if (given === undefined) {
      if (o.default !== undefined) values[name] = o.list ? [o.default] : o.default;
      else if (o.type.kind === 'flag') values[name] = false;
      continue;
    }
    if (o.type.kind === 'flag') values[name] = true;
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
  return { config, values };
}
