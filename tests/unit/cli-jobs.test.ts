// `npm run bench --jobs N`: how a sweep is split over processes (the run itself: integration/cli-jobs).
import { describe, expect, it } from 'vitest';
import { jobShard, planJobs, withoutFlags } from '../../src/cli/jobs.ts';
import { selectShard, splitSweepArgs } from '../../src/cli/sweep.ts';

describe('planJobs', () => {
  it('auto: one job per core while each job gets at least four configurations, at most four jobs', () => {
    expect(planJobs('auto', 24, 2)).toBe(2);
    expect(planJobs(undefined, 24, 16)).toBe(4);
    expect(planJobs('auto', 7, 2)).toBe(1);
    expect(planJobs('auto', 8, 2)).toBe(2);
    expect(planJobs('auto', 100, 1)).toBe(1);
  });

  it('an explicit count is kept, but never more jobs than configurations', () => {
    expect(planJobs(3, 24, 2)).toBe(3);
    expect(planJobs(8, 2, 16)).toBe(2);
    expect(planJobs(1, 24, 16)).toBe(1);
  });
});

describe('jobShard', () => {
  it('the jobs of a shard partition exactly that shard', () => {
    const items = Array.from({ length: 23 }, (_, k) => k);
    for (const outer of [undefined, { index: 1, count: 3 }]) {
      const mine = selectShard(items, outer);
      const parts = [0, 1, 2].map((j) => selectShard(items, jobShard(outer, j, 3)));
      expect(parts.flat().sort((a, b) => a - b)).toEqual(mine);
      expect(new Set(parts.flat()).size).toBe(mine.length);
      // balanced: sizes differ by at most one
      expect(Math.max(...parts.map((p) => p.length)) - Math.min(...parts.map((p) => p.length))).toBeLessThanOrEqual(1);
    }
  });
});

describe('--jobs and the flags a job gets its own value for', () => {
  it('parses --jobs N|auto and rejects anything else', () => {
    expect(splitSweepArgs(['--jobs', '2', '--model', 'm']).sweep.jobs).toBe(2);
    expect(splitSweepArgs(['--jobs=auto']).sweep.jobs).toBe('auto');
    expect(splitSweepArgs(['--jobs', '2', '--model', 'm']).rest).toEqual(['--model', 'm']);
    expect(() => splitSweepArgs(['--jobs', '0'])).toThrow(/whole number of processes/);
    expect(() => splitSweepArgs(['--jobs', 'many'])).toThrow(/whole number of processes/);
  });

  it('drops a flag with its value, in both spellings, and nothing else', () => {
    expect(
      withoutFlags(['--model', 'm', '--threads', '2', '--data', 'd', '--threads=4', '--links'], ['--threads']),
    ).toEqual(['--model', 'm', '--data', 'd', '--links']);
  });
});
