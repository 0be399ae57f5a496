/**
 * Every command-line entry point (each `tsx scripts/….ts` in package.json's scripts, and
 * the diagnostics run with `npx tsx`) declares its arguments as a CliSpec and parses them
 * with src/cli/options.ts: --help and -h answer with the usage (exit code 0) listing every
 * option, and an unknown option is refused by name (exit code 2). The specs are checked
 * here without starting a command: the scripts' own work needs the engine and real data.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import {
  CLI_OPTIONS,
  CliHelp,
  parseCli,
  reportCliError,
  usage,
  type CliOptionName,
  type CliSpec,
} from '../../src/cli/options.ts';
import { BENCH_CLI } from '../../src/cli/args.ts';
import { main as benchMain } from '../../src/cli/bench.ts';
import { BENCH_CALIB_CLI, main as benchCalibMain } from '../../src/cli/bench-calib.ts';
import { LESSONS_CLI, main as lessonsMain, parseLessonsArgs } from '../../src/cli/lessons.ts';
import { MIRROR_CLI, main as mirrorMain } from '../../src/cli/mirror.ts';
import { SITE_CLI, main as siteMain } from '../../src/cli/site.ts';
import { MUTATION_CLI } from '../../scripts/mutation.ts';
import * as scriptSpecs from '../../scripts/cli-specs.ts';
import { CONFIG_FIELDS } from '../../src/lib/config/schema.ts';
import { RUN_OPTIONS } from '../../src/lib/config/run-options.ts';
import { QpError } from '../../src/lib/util/errors.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const { SCRIPT_SPECS } = scriptSpecs;

/** Each npm script's spec, and the exported name the script (or the module it runs) parses with. */
const NPM_SPECS: Record<string, [CliSpec, string]> = {
  // bench.ts parses with parseBenchArgs, which reads BENCH_CLI (args.ts)
  bench: [BENCH_CLI, 'parseBenchArgs'],
  'bench:calib': [BENCH_CALIB_CLI, 'BENCH_CALIB_CLI'],
  lessons: [LESSONS_CLI, 'LESSONS_CLI'],
  mirror: [MIRROR_CLI, 'MIRROR_CLI'],
  site: [SITE_CLI, 'SITE_CLI'],
  'test:mutation': [MUTATION_CLI, 'MUTATION_CLI'],
};
for (const [name, spec] of Object.entries(SCRIPT_SPECS)) {
  const exported = Object.entries(scriptSpecs).find(([k, v]) => v === spec && k !== 'SCRIPT_SPECS')![0];
  NPM_SPECS[name] = [spec, exported];
}

/** Every flag a spec takes, found from the tables on their own (not through usage()). */
function flagsOf(spec: CliSpec): string[] {
  const fields =
    spec.config === 'all' ? CONFIG_FIELDS : CONFIG_FIELDS.filter((f) => (spec.config ?? []).includes(f.name));
  return [
    ...fields.map((f) => f.cli.flag),
    ...(spec.run ?? []).map((n) => RUN_OPTIONS.find((o) => o.name === n)!.cli!.flag),
    ...(spec.cli ?? []).map((n: CliOptionName) => CLI_OPTIONS[n].flag),
    ...Object.values(spec.extra ?? {}).map((o) => o.flag),
  ];
}

/** The smallest command line the spec accepts: its required options and positionals. */
function minimalArgv(spec: CliSpec): string[] {
  const argv: string[] = [];
  if (spec.config === 'all') argv.push('--model', 'm.onnx', '--data', 'd');
  for (const name of spec.required ?? []) argv.push(`--${spec.extra![name].flag}`, 'x');
  for (let i = 0; i < (spec.positionals?.min ?? 0); i++) argv.push(`p${i}`);
  return argv;
}

function refusal(spec: CliSpec, argv: string[]): QpError {
  try {
    parseCli(spec, argv);
  } catch (e) {
    return e as QpError;
  }
  throw new Error(`${spec.command} accepted ${argv.join(' ')}`);
}

describe('every command-line entry point', () => {
  it('has a spec for each tsx script in package.json, and the script parses with it', () => {
    const scripts = (
      JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts;
    const entries = Object.entries(scripts).filter(([, cmd]) => /^tsx scripts\/[\w-]+\.ts$/.test(cmd));
    // every spec named after an npm script is one, and every such script has a spec
    expect(entries.map(([n]) => n).sort()).toEqual(
      Object.keys(NPM_SPECS)
        .filter((n) => !n.includes('/'))
        .sort(),
    );
    for (const [name, cmd] of entries) {
      expect(NPM_SPECS[name], `npm run ${name} has no CliSpec`).toBeDefined();
      const file = resolve(ROOT, cmd.slice('tsx '.length));
      let text = readFileSync(file, 'utf8');
      // a wrapper that runs a src/cli module's main: the module parses
      const delegate = /import \{ main \} from '(\.\.\/src\/cli\/[\w-]+\.ts)'/.exec(text);
      if (delegate) text += readFileSync(resolve(file, '..', delegate[1]), 'utf8');
      const [, specName] = NPM_SPECS[name];
      expect(text, `${cmd} does not parse with ${specName}`).toMatch(new RegExp(`\\b${specName}\\b`));
      expect(text, `${cmd} reads process.argv itself`).not.toMatch(/process\.argv\.(indexOf|includes)|parseArgs\(/);
    }
    // the diagnostics without an npm script
    for (const file of ['calib-compare', 'profile-calibration', 'ptq-diag']) {
      expect(readFileSync(resolve(ROOT, `scripts/${file}.ts`), 'utf8')).toMatch(/parseCliOrExit\(\w+_CLI\)/);
    }
  });

  describe.each(Object.entries(NPM_SPECS))('%s', (_name, [spec]) => {
    it('answers --help and -h with a usage that lists every option', () => {
      const text = usage(spec);
      expect(text.startsWith(`usage: ${spec.command}`)).toBe(true);
      for (const flag of [...flagsOf(spec), 'help']) expect(text).toMatch(new RegExp(`--${flag}\\b`));
      for (const h of ['--help', '-h']) {
        const e = refusal(spec, [h]);
        expect(e).toBeInstanceOf(CliHelp);
        expect(e.message).toBe(text);
        const lines: string[] = [];
        expect(reportCliError(e, (l) => lines.push(l))).toBe(0);
        expect(lines).toEqual([text]);
      }
    });

    it('refuses an unknown option by name, with exit code 2', () => {
      const e = refusal(spec, [...minimalArgv(spec), '--no-such-option', '1']);
      expect(e).toBeInstanceOf(QpError);
      expect(e).not.toBeInstanceOf(CliHelp);
      expect(e.code).toBe('ARG_INVALID');
      expect(e.message).toContain('--no-such-option');
      expect(e.message).toContain(spec.command);
      const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
      try {
        expect(reportCliError(e)).toBe(2);
        expect(String(err.mock.calls[0][0])).toMatch(/^error \[ARG_INVALID\]: Unknown option --no-such-option/);
      } finally {
        err.mockRestore();
      }
    });

    it('accepts its smallest command line: its own defaults are values it takes', () => {
      expect(() => parseCli(spec, minimalArgv(spec))).not.toThrow();
    });
  });
});

describe('the commands answer --help with exit code 0 and refuse unknown options with 2', () => {
  let out: MockInstance<typeof process.stdout.write>;
  let err: MockInstance<typeof process.stderr.write>;
  beforeEach(() => {
    out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    out.mockRestore();
    err.mockRestore();
  });

  it.each([
    ['bench', benchMain, BENCH_CLI],
    ['bench:calib', benchCalibMain, BENCH_CALIB_CLI],
    ['lessons', lessonsMain, LESSONS_CLI],
  ] as const)('%s', async (_name, main, spec) => {
    expect(await main(['--help'])).toBe(0);
    expect(out.mock.calls.map((c) => String(c[0])).join('')).toBe(`${usage(spec)}\n`);
    expect(await main(['--bogus'])).toBe(2);
    expect(String(err.mock.calls.at(-1)![0])).toContain('Unknown option --bogus');
  });

  it.each([
    ['mirror', mirrorMain, MIRROR_CLI],
    ['site', siteMain, SITE_CLI],
  ] as const)('%s (which print through their log)', async (_name, main, spec) => {
    const lines: string[] = [];
    expect(await main(['-h'], (l) => lines.push(l))).toBe(0);
    expect(lines).toEqual([usage(spec)]);
    expect(await main(['--bogus'], (l) => lines.push(l))).toBe(2);
    expect(String(err.mock.calls.at(-1)![0])).toContain('Unknown option --bogus');
  });

  it('bench:calib keeps its range of evaluation images', async () => {
    expect(await benchCalibMain(['--eval', '873'])).toBe(2);
    expect(String(err.mock.calls.at(-1)![0])).toContain('--eval must be a whole number from 1 to 872');
  });
});

describe('command-specific arguments', () => {
  it('lessons: defaults, --eval as a limit, lesson ids checked', () => {
    const a = parseLessonsArgs([]);
    expect(a).toMatchObject({ engine: 'wasm', evalLimit: undefined, only: undefined });
    expect(a.model).toMatch(/mobilenetv2-7-fp32\.onnx$/);
    expect(parseLessonsArgs(['--eval', '100', '--engine', 'node']).evalLimit).toBe(100);
    expect(parseLessonsArgs(['--eval', 'rest']).evalLimit).toBeUndefined();
    expect(() => parseLessonsArgs(['--eval', '100,200'])).toThrow(/--eval must be a whole number/);
    expect(() => parseLessonsArgs(['--only', 'no-such-lesson'])).toThrow(/Unknown --only "no-such-lesson"/);
  });

  it("bench:ptq: the script's defaults and the schema's flag names", () => {
    const p = parseCli(scriptSpecs.BENCH_PTQ_CLI, ['--ptq-inputs', 'fp32,quantized-prefix', '--w-bits', '4,3']);
    const get = (n: string) => [...p.config].find(([f]) => f.name === n)?.[1];
    expect(get('ptq')).toEqual(['none', 'adaround', 'gptq']);
    expect(get('ptqInputs')).toEqual(['fp32', 'quantized-prefix']);
    expect(get('wBits')).toEqual([4, 3]);
    expect(get('bnReestimate')).toEqual([false]);
    expect(get('calib')).toEqual([128]);
    expect(get('eval')).toEqual(['rest']);
    // calib takes one value here
    expect(() => parseCli(scriptSpecs.BENCH_PTQ_CLI, ['--calib', '64,128'])).toThrow(/--calib must be/);
    expect(() => parseCli(scriptSpecs.BENCH_PTQ_CLI, ['--inputs', 'fp32'])).toThrow(/Unknown option --inputs/);
  });

  it('site: repeated --mirror and exactly one DIST', () => {
    const p = parseCli(SITE_CLI, ['--mirror', 'http://a/', 'dist', '--mirror', 'http://b/']);
    expect(p.values.mirror).toEqual(['http://a/', 'http://b/']);
    expect(p.positionals).toEqual(['dist']);
    expect(() => parseCli(SITE_CLI, [])).toThrow(/Give exactly 1 DIST \(got 0/);
    expect(() => parseCli(SITE_CLI, ['a', 'b'])).toThrow(/Give exactly 1 DIST \(got 2/);
  });

  it('mirror and make-models: a missing required option is named', () => {
    expect(() => parseCli(MIRROR_CLI, [])).toThrow(/Missing --out DIR/);
    expect(() => parseCli(scriptSpecs.MAKE_MODELS_CLI, ['--seed', '3'])).toThrow(/Missing --out DIR/);
    expect(() => parseCli(scriptSpecs.MAKE_MODELS_CLI, ['--out', 'd', '--only', 'vgg'])).toThrow(
      /Unknown --only "vgg"/,
    );
    expect(parseCli(scriptSpecs.MAKE_MODELS_CLI, ['--out', 'd']).values).toMatchObject({ out: 'd', seed: 1 });
  });

  it('a default for something the command does not take is a mistake in the spec', () => {
    expect(() => parseCli({ command: 'x', defaults: { wBits: '4' } }, [])).toThrow(/a default for "wBits"/);
  });
});
