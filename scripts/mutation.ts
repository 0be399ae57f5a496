/**
 * `npm run test:mutation -- [folders or paths]`: Stryker (stryker.config.mjs) over the pure
 * core, one folder at a time, with the unit tier. A folder is named by its short name
 * (`quant`, `onnx`, …, `cli`, `lessons`) or by a path (a folder or one file under src/).
 * No argument runs every folder of CORE in turn. Each run is incremental: the results in
 * reports/stryker-incremental.json are reused wherever neither the code nor its covering
 * tests changed, and a run over one folder keeps the others' results. After each folder the
 * score (killed / survived / no coverage / timeout) is printed, and at the end the table of
 * the folders run and where the HTML report is.
 *
 * Exits with Stryker's status when a run fails, 2 on an unknown folder, 0 otherwise (the
 * score is reported, not enforced: docs/testing.md keeps the targets and the figures).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseCli, reportCliError, TEXT, type CliSpec } from '../src/cli/options.ts';

/** The environment variable that hands `--tests` to vitest.stryker.config.ts. */
export const MUTATION_TESTS_ENV = 'QP_MUTATION_TESTS';

/** The pure core's folders, smallest first within each priority group. */
export const CORE: Record<string, string> = {
  quant: 'src/lib/quant',
  config: 'src/lib/config',
  export: 'src/lib/export',
  experiment: 'src/lib/experiment',
  pipeline: 'src/lib/pipeline',
  ptq: 'src/lib/ptq',
  onnx: 'src/lib/onnx',
  storage: 'src/lib/storage',
  lessons: 'src/lessons',
  models: 'src/lib/models',
  cli: 'src/cli',
  data: 'src/lib/data',
};

export interface Tally {
  killed: number;
  survived: number;
  noCoverage: number;
  timeout: number;
  /** mutants the TypeScript checker rejected, or that crashed the runner: not scored */
  invalid: number;
  ignored: number;
}

/** The parts of stryker.config.mjs this script reads. */
interface StrykerConfig {
  mutate: string[];
  jsonReporter: { fileName: string };
  htmlReporter: { fileName: string };
}

interface ReportMutant {
  status: string;
}

interface Report {
  files: Record<string, { mutants: ReportMutant[] }>;
}

/** Counts the mutants of the report's files under `path` (a folder or a file). */
export function tally(report: Report, path: string, root = process.cwd()): Tally {
  const t: Tally = { killed: 0, survived: 0, noCoverage: 0, timeout: 0, invalid: 0, ignored: 0 };
  const prefix = path.replace(/\/+$/, '');
  for (const [file, { mutants }] of Object.entries(report.files)) {
    const rel = relative(root, resolve(root, file));
    if (rel !== prefix && !rel.startsWith(`${prefix}/`)) continue;
    for (const m of mutants) {
      if (m.status === 'Killed') t.killed++;
      else if (m.status === 'Survived') t.survived++;
      else if (m.status === 'NoCoverage') t.noCoverage++;
      else if (m.status === 'Timeout') t.timeout++;
      else if (m.status === 'Ignored') t.ignored++;
      else t.invalid++;
    }
  }
  return t;
}

/** Stryker's mutation score: detected (killed or timed out) over all valid, not ignored mutants. */
export function score(t: Tally): number {
  const valid = t.killed + t.timeout + t.survived + t.noCoverage;
  return valid === 0 ? NaN : (100 * (t.killed + t.timeout)) / valid;
}

export function formatTally(name: string, t: Tally): string {
  const s = score(t);
  return (
    `${name.padEnd(12)} ${(Number.isNaN(s) ? 'n/a' : `${s.toFixed(1)}%`).padStart(7)}  ` +
    `killed ${t.killed}, survived ${t.survived}, no coverage ${t.noCoverage}, timeout ${t.timeout}` +
    ` (not scored: ${t.invalid} invalid, ${t.ignored} ignored)`
  );
}

/** A folder's short name or a path under src/ to the path Stryker mutates. */
export function resolveTarget(arg: string, root: string): string | undefined {
  if (arg in CORE) return CORE[arg];
  const rel = relative(root, resolve(root, arg)).replace(/\/+$/, '');
  if (!rel.startsWith('src/') || !existsSync(resolve(root, rel))) return undefined;
  return rel;
}

/** The mutate globs for one target: the target's files, less the config's exclusions. */
export function mutateGlobs(target: string, root: string, base: readonly string[]): string[] {
  const own = statSync(resolve(root, target)).isDirectory() ? `${target}/**/*.ts` : target;
  return [own, ...base.filter((g) => g.startsWith('!'))];
}

/** The command line of `npm run test:mutation`. */
export const MUTATION_CLI: CliSpec = {
  command: 'npm run test:mutation --',
  positionals: { arg: 'FOLDER|PATH', min: 0, max: 1000 },
  extra: {
    tests: {
      flag: 'tests',
      arg: 'GLOB',
      type: TEXT,
      multiple: true,
      help: 'only the unit test files matching GLOB (e.g. tests/unit/quant-*.test.ts; repeat for more) try to kill the mutants: the tests that guard the files, instead of every unit test that reaches them (faster; the score can only be lower)',
    },
  },
  notes: `Folders: ${Object.keys(CORE).join(', ')} (default: all, in this order), or a file or folder under src/.`,
};

async function main(): Promise<number> {
  const root = resolve(import.meta.dirname, '..');
  const config = ((await import(pathToFileURL(resolve(root, 'stryker.config.mjs')).href)) as { default: StrykerConfig })
    .default;
  let args: string[];
  let tests: string[];
  try {
    const cli = parseCli(MUTATION_CLI, process.argv.slice(2));
    args = cli.positionals;
    tests = (cli.values.tests as string[] | undefined) ?? [];
  } catch (e) {
    return reportCliError(e);
  }
  const names = args.length ? args : Object.keys(CORE);
  const targets: [string, string][] = [];
  for (const n of names) {
    const t = resolveTarget(n, root);
    if (!t) {
      console.error(
        `"${n}" is neither a core folder (${Object.keys(CORE).join(', ')}) nor a file or folder under src/; name one of those.`,
      );
      return 2;
    }
    targets.push([n, t]);
  }
  const reportFile = resolve(root, config.jsonReporter.fileName);
  const lines: string[] = [];
  for (const [name, target] of targets) {
    const mutate = mutateGlobs(target, root, config.mutate);
    console.log(
      `\n=== ${name}: stryker run --mutate ${mutate.join(',')}${tests.length ? ` (tests: ${tests.join(' ')})` : ''}`,
    );
    const r = spawnSync('npx', ['stryker', 'run', '--mutate', mutate.join(',')], {
      cwd: root,
      stdio: 'inherit',
      // read by vitest.stryker.config.ts
      env: tests.length ? { ...process.env, [MUTATION_TESTS_ENV]: tests.join('\n') } : process.env,
    });
    if (r.status !== 0) {
      console.error(`Stryker failed on ${name} (exit ${r.status}); see the log above.`);
      return r.status ?? 1;
    }
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as Report;
    const line = formatTally(name, tally(report, target, root));
    console.log(`\n${line}`);
    lines.push(line);
  }
  console.log(`\nMutation score per folder (this run):\n${lines.join('\n')}`);
  console.log(
    `HTML report (every folder's latest results): ${relative(root, resolve(root, config.htmlReporter.fileName))}`,
  );
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) process.exitCode = await main();
