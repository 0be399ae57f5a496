/**
 * Sweeps larger than one machine, for `npm run bench` (one machine's cores: `--jobs`,
 * cli/jobs.ts): `--shard i/n` runs every n-th
 * configuration (i = 0…n−1), `--jsonl FILE` appends each record as soon as its configuration
 * finishes (a killed sweep keeps what it finished; a rerun skips configHashes already in the
 * file), `--merge FILE…` prints the combined table of JSONL files. So a sweep spreads over any
 * existing batch engine (a CI matrix, a Slurm array, Kubernetes Jobs) with no scheduler here.
 *
 * Why its own module: these flags are split off argv before the config flags are parsed
 * (cli/args.ts), and the JSONL handling is plain file I/O that the pipeline must not know.
 */
import { appendFile, readFile } from 'node:fs/promises';
import { QpError } from '../lib/util/errors.ts';
import type { ExperimentResult } from '../lib/experiment/types.ts';

export interface Shard {
  /** 0-based index of this shard */
  index: number;
  count: number;
}

export interface SweepArgs {
  shard?: Shard;
  jsonl?: string;
  /** files to merge (then nothing runs) */
  merge?: string[];
  /** processes on this machine (cli/jobs.ts); 'auto' by default */
  jobs?: number | 'auto';
}

function bad(msg: string): never {
  throw new QpError('ARG_INVALID', msg);
}

/** "i/n" with 0 ≤ i < n. */
export function parseShard(v: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  if (!m) bad(`--shard must look like i/n (e.g. 0/4: the first of four shards), got "${v}".`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1) bad(`--shard ${v}: the shard count must be at least 1.`);
  if (index >= count) bad(`--shard ${v}: the index counts from 0, so it must be below ${count}.`);
  return { index, count };
}

/**
 * Take --shard, --jsonl, --jobs and --merge (which eats every following argument up to
 * the next flag) out of argv; the rest goes to parseBenchArgs.
 */
export function splitSweepArgs(argv: string[]): { sweep: SweepArgs; rest: string[] } {
  const sweep: SweepArgs = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] =
      a.startsWith('--') && a.includes('=')
        ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
        : [a, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) bad(`${flag} needs a value.`);
      return v;
    };
    if (flag === '--shard') sweep.shard = parseShard(value());
    else if (flag === '--jsonl') sweep.jsonl = value();
    else if (flag === '--jobs') {
      const v = value().trim();
      if (v !== 'auto' && !/^[1-9]\d*$/.test(v))
        bad(`--jobs must be a whole number of processes (1 runs everything in this one) or auto, got "${v}".`);
      sweep.jobs = v === 'auto' ? 'auto' : Number(v);
    } else if (flag === '--merge') {
      const files = inline !== undefined ? [inline] : [];
      while (i + 1 < argv.length && !argv[i + 1].startsWith('--')) files.push(argv[++i]);
      if (files.length === 0) bad('--merge needs at least one JSONL file.');
      sweep.merge = [...(sweep.merge ?? []), ...files];
    } else rest.push(a);
  }
  return { sweep, rest };
}

/** Every count-th item starting at index (stable order, so shards never overlap). */
export function selectShard<T>(items: T[], shard: Shard | undefined): T[] {
  return shard ? items.filter((_, k) => k % shard.count === shard.index) : items;
}

/**
 * Records of a JSONL file; a missing file is empty. A last line cut off by a killed run is
 * ignored; any other unreadable line is an error naming the file and line.
 */
export async function readJsonl(file: string): Promise<ExperimentResult[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new QpError('FILE_NOT_FOUND', `The JSONL file ${file} could not be read (${(e as Error).message}).`);
  }
  const lines = text.split('\n');
  const out: ExperimentResult[] = [];
  lines.forEach((line, k) => {
    if (!line.trim()) return;
    try {
      const r = JSON.parse(line) as ExperimentResult;
      if (typeof r?.configHash !== 'string') throw new Error('no configHash');
      out.push(r);
    } catch (e) {
      const isLast = lines.slice(k + 1).every((l) => !l.trim());
      if (isLast && !text.endsWith('\n')) return; // cut off mid-write
      throw new QpError(
        'CONFIG_INVALID',
        `${file} line ${k + 1} is not a sweep record (${(e as Error).message}). Remove that line or pass another file.`,
      );
    }
  });
  return out;
}

/**
 * Append one record as one line: a single write to a file opened for appending, so a kill
 * leaves at most a partial last line, and the jobs of one sweep (cli/jobs.ts) appending to
 * the same local file never interleave their lines.
 */
export async function appendJsonl(file: string, r: ExperimentResult): Promise<void> {
  await appendFile(file, JSON.stringify(r) + '\n');
}

/** Records of all files, the first of each configHash kept, in file order. */
export async function mergeJsonl(files: string[]): Promise<ExperimentResult[]> {
  const seen = new Set<string>();
  const out: ExperimentResult[] = [];
  for (const f of files) {
    const recs = await readJsonl(f);
    if (recs.length === 0)
      throw new QpError('FILE_NOT_FOUND', `${f} holds no sweep records (missing or empty). Check the path.`);
    for (const r of recs) {
      if (seen.has(r.configHash)) continue;
      seen.add(r.configHash);
      out.push(r);
    }
  }
  return out;
}

/** Drop a last line cut off by a killed run, so appended records start on a line of their own. */
export async function repairJsonl(file: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return;
  }
  if (text === '' || text.endsWith('\n')) return;
  const { writeFile } = await import('node:fs/promises');
  await writeFile(file, text.slice(0, text.lastIndexOf('\n') + 1));
}
