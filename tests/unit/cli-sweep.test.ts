// Sweep flags of `npm run bench`: shards, JSONL append/skip/repair, merge.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

  it('a garbled last line that ends in a newline is no cut-off write: refused by line, and repair leaves it', async () => {
    // a killed append leaves a partial line without its newline (appendJsonl writes record
    // and newline at once); a complete but unreadable last line is damage the user must see
    const d = join(dir, 'd.jsonl');
    const text = '{"configHash":"h1"}\n{"configHash":"h2"}\n{"configHash":"h3","fp3\n\n';
    writeFileSync(d, text);
    await expect(readJsonl(d)).rejects.toThrow(/d\.jsonl line 3 is not a sweep record/);
    await repairJsonl(d);
    expect(readFileSync(d, 'utf8')).toBe(text);
    let err: unknown;
    try {
      await readJsonl(d);
    } catch (e) {
      err = e;
    }
    expect((err as QpError).code).toBe('CONFIG_INVALID');
  });

  it('a last line without configHash is a cut-off write only when it lacks its newline', async () => {
    const e = join(dir, 'e.jsonl');
    writeFileSync(e, '{"configHash":"h1"}\n{"configHash":7}');
    expect((await readJsonl(e)).map((r) => r.configHash)).toEqual(['h1']);
    await repairJsonl(e);
    expect(readFileSync(e, 'utf8')).toBe('{"configHash":"h1"}\n');
    writeFileSync(e, '{"configHash":"h1"}\n{"configHash":7}\n');
    await expect(readJsonl(e)).rejects.toThrow(/line 2 is not a sweep record \(no configHash\)/);
  });

  it('repair leaves a missing file missing, an empty file empty and a lone cut-off line as nothing', async () => {
    const f = join(dir, 'f.jsonl');
    await repairJsonl(f);
    expect(await readJsonl(f)).toEqual([]);
    writeFileSync(f, '');
    await repairJsonl(f);
    expect(readFileSync(f, 'utf8')).toBe('');
    writeFileSync(f, '{"configHash":"h');
    await repairJsonl(f);
    expect(readFileSync(f, 'utf8')).toBe('');
  });

  it('blank and whitespace-only lines are skipped', async () => {
    const g = join(dir, 'g.jsonl');
    writeFileSync(g, '\n  \n{"configHash":"h1"}\n\t\n{"configHash":"h2"}\n');
    expect((await readJsonl(g)).map((r) => r.configHash)).toEqual(['h1', 'h2']);
  });
});

describe('JSONL properties: read, merge and resume never lose or double a record', () => {
  const hash = fc.constantFrom('a1', 'b2', 'c3', 'd4', 'e5', 'f6');
  const record = fc.record({ configHash: hash, top1: fc.double({ noNaN: true, noDefaultInfinity: true }) });
  const tmp = () => mkdtempSync(join(tmpdir(), 'qp-sweep-prop-'));
  // JSON has no -0; compare records as they round-trip
  const asJson = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

  it('what is appended is read back, in order, with duplicates kept', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(record, { maxLength: 12 }), async (recs) => {
        const dir = tmp();
        try {
          const f = join(dir, 'r.jsonl');
          for (const r of recs) await appendJsonl(f, r as unknown as ExperimentResult);
          expect(await readJsonl(f)).toEqual(asJson(recs));
        } finally {
          rmSync(dir, { recursive: true });
        }
      }),
      { numRuns: 40 },
    );
  });

  it('a run killed at any byte of an append, repaired and resumed, holds every record exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(record, { minLength: 1, maxLength: 6, selector: (r) => r.configHash }),
        fc.nat(),
        fc.nat(),
        async (recs, killAtRecord, killAtByte) => {
          const dir = tmp();
          try {
            const f = join(dir, 'r.jsonl');
            const k = killAtRecord % recs.length;
            for (const r of recs.slice(0, k)) await appendJsonl(f, r as unknown as ExperimentResult);
            const line = JSON.stringify(recs[k]) + '\n';
            // the kill leaves a prefix of the line, never the whole line with its newline
            const cut = line.slice(0, killAtByte % line.length);
            writeFileSync(f, (k ? readFileSync(f, 'utf8') : '') + cut);
            // resume as bench does: repair, skip the hashes already there, append the rest
            await repairJsonl(f);
            const done = new Set((await readJsonl(f)).map((r) => r.configHash));
            for (const r of recs) if (!done.has(r.configHash)) await appendJsonl(f, r as unknown as ExperimentResult);
            const back = await readJsonl(f);
            expect(back.map((r) => r.configHash).sort()).toEqual(recs.map((r) => r.configHash).sort());
            expect(back).toEqual(asJson(recs));
          } finally {
            rmSync(dir, { recursive: true });
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('merging keeps the first record of each configHash, in file order, and drops none', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(record, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 4 }),
        async (files) => {
          const dir = tmp();
          try {
            const paths = files.map((_, i) => join(dir, `s${i}.jsonl`));
            for (const [i, recs] of files.entries())
              for (const r of recs) await appendJsonl(paths[i], r as unknown as ExperimentResult);
            const all = asJson(files.flat());
            const expected = all.filter((r, i) => all.findIndex((q) => q.configHash === r.configHash) === i);
            expect(await mergeJsonl(paths)).toEqual(expected);
          } finally {
            rmSync(dir, { recursive: true });
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
