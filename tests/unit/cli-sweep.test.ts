// Sweep flags of `npm run bench`: shards, JSONL append/skip/repair, merge.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  appendJsonl,
  mergeJsonl,
  parseShard,
  readJsonl,
  repairJsonl,
  selectShard,
  splitSweepArgs,
} from '../../src/cli/sweep.ts';
import type { ExperimentResult } from '../../src/lib/experiment/types.ts';
import { QpError } from '../../src/lib/util/errors.ts';

const rec = (h: string) => ({ configHash: h, fp32: { top1: 0.5 } }) as unknown as ExperimentResult;

describe('shards', () => {
  it('parses i/n and rejects bad ones with a sentence', () => {
    expect(parseShard('1/4')).toEqual({ index: 1, count: 4 });
    for (const b of ['4/4', '1', 'a/b', '0/0']) {
      let e: unknown;
      try {
        parseShard(b);
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(QpError);
      expect((e as QpError).code).toBe('ARG_INVALID');
    }
  });

  it('shards partition the configurations', () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    const parts = [0, 1, 2].map((i) => selectShard(items, { index: i, count: 3 }));
    expect(parts[0]).toEqual([0, 3, 6, 9]);
    expect(parts.flat().sort((a, b) => a - b)).toEqual(items);
    expect(selectShard(items, undefined)).toBe(items);
  });
});

describe('splitSweepArgs', () => {
  it('takes the sweep flags out and leaves the rest in order', () => {
    const { sweep, rest } = splitSweepArgs(['--model', 'm.onnx', '--shard=2/5', '--jsonl', 'out.jsonl', '--data', 'd']);
    expect(sweep).toEqual({ shard: { index: 2, count: 5 }, jsonl: 'out.jsonl' });
    expect(rest).toEqual(['--model', 'm.onnx', '--data', 'd']);
    expect(splitSweepArgs(['--merge', 'a.jsonl', 'b.jsonl', '--x']).sweep.merge).toEqual(['a.jsonl', 'b.jsonl']);
    expect(() => splitSweepArgs(['--jsonl'])).toThrow(/needs a value/);
    expect(() => splitSweepArgs(['--merge'])).toThrow(/at least one/);
  });
});

describe('JSONL records', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qp-sweep-'));

  it('appends, reads back, drops a cut-off last line, and merges without duplicates', async () => {
    const a = join(dir, 'a.jsonl');
    expect(await readJsonl(a)).toEqual([]);
    await appendJsonl(a, rec('h1'));
    await appendJsonl(a, rec('h2'));
    writeFileSync(a, readFileSync(a, 'utf8') + '{"configHash":"h3","fp3'); // killed mid-write
    expect((await readJsonl(a)).map((r) => r.configHash)).toEqual(['h1', 'h2']);
    await repairJsonl(a);
    await appendJsonl(a, rec('h3'));
    expect((await readJsonl(a)).map((r) => r.configHash)).toEqual(['h1', 'h2', 'h3']);
    const b = join(dir, 'b.jsonl');
    await appendJsonl(b, rec('h2'));
    await appendJsonl(b, rec('h4'));
    expect((await mergeJsonl([a, b])).map((r) => r.configHash)).toEqual(['h1', 'h2', 'h3', 'h4']);
    await expect(mergeJsonl([join(dir, 'none.jsonl')])).rejects.toThrow(/holds no sweep records/);
  });

  it('a broken line in the middle is an error naming the line', async () => {
    const c = join(dir, 'c.jsonl');
    writeFileSync(c, '{"configHash":"h1"}\nnot json\n{"configHash":"h2"}\n');
    await expect(readJsonl(c)).rejects.toThrow(/line 2 is not a sweep record/);
  });
});
