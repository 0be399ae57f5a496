// `npm run bench --jobs 2` on the real MobileNet-V2: the same records, in the same order, as one process.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ExperimentResult } from '../../src/lib/experiment/types.ts';
import { HAVE_SHARED_DATA, MOBILENET_V2, SAMPLE_DIR } from '../support/shared-data.ts';

const ROOT = resolve(import.meta.dirname, '../..');

function bench(args: string[]): { stdout: string; stderr: string; records: ExperimentResult[] } {
  const json = join(mkdtempSync(join(tmpdir(), 'qp-jobs-test-')), 'out.json');
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/bench.ts', ...args, '--json', json], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`bench exited ${r.status}: ${r.stderr.slice(-2000)}`);
  return { stdout: r.stdout, stderr: r.stderr, records: JSON.parse(readFileSync(json, 'utf8')) as ExperimentResult[] };
}

describe.skipIf(!HAVE_SHARED_DATA)('bench --jobs', () => {
  it("two 1-thread jobs give the records one 1-thread process gives, in the configurations' order", () => {
    const sweep = [
      '--model',
      MOBILENET_V2,
      '--data',
      SAMPLE_DIR,
      '--backend',
      'tensorrt,academic',
      '--w-bits',
      '8,4',
      '--calib',
      '8',
      '--eval',
      '24',
      '--engine',
      'node',
    ];
    const one = bench([...sweep, '--threads', '1', '--jobs', '1']);
    const two = bench([...sweep, '--threads', '2', '--jobs', '2']);
    expect(two.stderr).toMatch(/4 config\(s\) in 2 jobs × 1 engine thread/);
    expect(two.stderr).toMatch(/\[job 1\/2\]/);
    expect(two.stderr).toMatch(/\[job 2\/2\]/);
    expect(two.stdout).toMatch(
      /time: [\d.]+ s for 4 config\(s\) in 2 jobs × 1 thread\(s\) \(decode [\d.]+ s; job 1: .*; job 2: /,
    );
    expect(two.records.map((r) => r.configHash)).toEqual(one.records.map((r) => r.configHash));
    expect(two.records.map((r) => [r.quant.top1, r.agreement])).toEqual(
      one.records.map((r) => [r.quant.top1, r.agreement]),
    );
    // the share links are the parent's, as without jobs
    expect(two.records.map((r) => (r as ExperimentResult & { url: string }).url)).toEqual(
      one.records.map((r) => (r as ExperimentResult & { url: string }).url),
    );
    // and the table lists the configurations in the same order
    const rows = (s: string) =>
      s
        .split('\n')
        .filter((l) => /^(tensorrt|academic) W/.test(l))
        .map((l) => l.split(/\s+/).slice(0, 4).join(' '));
    expect(rows(two.stdout)).toEqual(rows(one.stdout));
    expect(rows(one.stdout)).toHaveLength(4);
  }, 240_000);
});
