/**
 * `npm run bench --jobs N`: one sweep spread over N processes of this CLI on one machine,
 * each running every N-th configuration (`--shard`) with its share of the threads and
 * appending its records to one JSONL file, which the parent then reads back in the
 * configurations' order. onnxruntime uses a second thread poorly on the fake-quant graphs
 * (docs/performance.md, "Why --jobs"), so on a 2-core machine two 1-thread jobs finish a
 * sweep sooner than one 2-thread run. Each job
 * repeats what the configurations share (the FP32 pass, the calibration statistics); the
 * crops are decoded once, by the parent, into the crop cache the jobs read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QpError } from '../lib/util/errors.ts';
import type { ExperimentResult } from '../lib/experiment/types.ts';
import { readJsonl, type Shard } from './sweep.ts';

/** Most jobs `auto` picks: beyond this the repeated FP32 and calibration passes cost more than they save. */
const MAX_AUTO_JOBS = 4;
/** Configurations per job below which `auto` keeps one process (a job's fixed cost is one FP32 pass and one calibration). */
const MIN_CONFIGS_PER_JOB = 4;

/**
 * How many jobs to run: an explicit count (capped by the configurations), or for `auto`
 * one per core up to MAX_AUTO_JOBS while every job gets at least MIN_CONFIGS_PER_JOB.
 */
export function planJobs(requested: number | 'auto' | undefined, configs: number, cores: number): number {
  if (requested === undefined || requested === 'auto') {
    return Math.max(1, Math.min(MAX_AUTO_JOBS, cores, Math.floor(configs / MIN_CONFIGS_PER_JOB)));
  }
  return Math.max(1, Math.min(requested, configs));
}

/** Shard j of `jobs` inside `outer` (or the whole list): every (outer.count·jobs)-th configuration. */
export function jobShard(outer: Shard | undefined, j: number, jobs: number): Shard {
  const o = outer ?? { index: 0, count: 1 };
  return { index: o.index + o.count * j, count: o.count * jobs };
}

/** argv without the flags a job gets its own value for. */
export function withoutFlags(argv: readonly string[], flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const name = a.includes('=') ? a.slice(0, a.indexOf('=')) : a;
    if (!flags.includes(name)) {
      out.push(a);
      continue;
    }
    if (!a.includes('=') && i + 1 < argv.length && !argv[i + 1].startsWith('--')) i++;
  }
  return out;
}

export interface JobsPlan {
  /** the CLI's entry script, run again by each job */
  entry: string;
  /** the sweep's argv without --jobs, --shard, --jsonl, --threads */
  argv: string[];
  jobs: number;
  threadsPerJob: number;
  shard?: Shard;
  /** where the jobs append their records; a temporary file when undefined */
  jsonl?: string;
}

export interface JobsOutcome {
  records: ExperimentResult[];
  /** each job's own `time:` line */
  times: string[];
}

function prefixLines(prefix: string, onLine: (l: string) => void) {
  let buf = '';
  return {
    push(chunk: Buffer) {
      buf += chunk.toString();
      let k;
      while ((k = buf.indexOf('\n')) >= 0) {
        onLine(prefix + buf.slice(0, k));
        buf = buf.slice(k + 1);
      }
    },
    flush() {
      if (buf) onLine(prefix + buf);
      buf = '';
    },
  };
}

/**
 * Runs the jobs and returns every record of the JSONL file (the caller picks its
 * configurations). A job that fails stops the others; its error line is the error.
 */
export async function runJobs(plan: JobsPlan, log: (line: string) => void): Promise<JobsOutcome> {
  const dir = plan.jsonl ? undefined : await mkdtemp(join(tmpdir(), 'qp-jobs-'));
  const jsonl = plan.jsonl ?? join(dir!, 'records.jsonl');
  const children: ChildProcess[] = [];
  try {
    const runs = Array.from({ length: plan.jobs }, (_, j) => {
      const s = jobShard(plan.shard, j, plan.jobs);
      const args = [
        ...plan.argv,
        '--threads',
        String(plan.threadsPerJob),
        '--shard',
        `${s.index}/${s.count}`,
        '--jsonl',
        jsonl,
        '--jobs',
        '1',
      ];
      const child = spawn(process.execPath, [...process.execArgv, plan.entry, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      const tag = `[job ${j + 1}/${plan.jobs}] `;
      let time = '';
      let lastError = '';
      const err = prefixLines(tag, (l) => {
        if (l.slice(tag.length).startsWith('error')) lastError = l.slice(tag.length);
        log(l);
      });
      const out = prefixLines('', (l) => {
        if (l.startsWith('time:')) time = l.slice('time:'.length).trim();
      });
      child.stderr!.on('data', err.push);
      child.stdout!.on('data', out.push);
      return new Promise<string>((resolve, reject) => {
        child.on('error', (e) => reject(new QpError('INTERNAL', `Job ${j + 1} could not start (${e.message}).`)));
        child.on('close', (code) => {
          err.flush();
          out.flush();
          if (code === 0) resolve(`job ${j + 1}: ${time}`);
          else
            reject(
              new QpError(
                'INTERNAL',
                `Job ${j + 1} of ${plan.jobs} failed (exit ${code}): ${lastError || 'see its output above'}`,
              ),
            );
        });
      });
    });
    const times = await Promise.all(runs);
    return { records: await readJsonl(jsonl), times };
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}
