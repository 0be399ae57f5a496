// Class index validation, labelling by file name, and seeded calibration/evaluation splits.
import { describe, expect, it } from 'vitest';
import {
  datasetFromFiles,
  loadClassIndex,
  maxEval,
  sampleSplits,
  wnidOfFileName,
  type NamedFile,
} from '../../src/lib/data/dataset.ts';
import { QpError } from '../../src/lib/util/errors.ts';

const SMALL_INDEX = {
  '0': ['n01440764', 'tench'],
  '1': ['n01443537', 'goldfish'],
  '2': ['n01484850', 'great_white_shark'],
};
const file = (name: string): NamedFile => ({ name, read: async () => new TextEncoder().encode(name) });

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(QpError);
    return (e as QpError).code;
  }
  throw new Error('expected a QpError');
}

describe('loadClassIndex', () => {
  it('returns [wnid, name] pairs by class number', () => {
    const idx = loadClassIndex(SMALL_INDEX);
    expect(idx).toEqual([
      ['n01440764', 'tench'],
      ['n01443537', 'goldfish'],
      ['n01484850', 'great_white_shark'],
    ]);
  });

  it.each([
    ['not an object', [['n01440764', 'tench']]],
    ['null', null],
    ['empty', {}],
    ['a gap in the numbers', { '0': ['n01440764', 'a'], '2': ['n01443537', 'b'] }],
    ['a non-numeric key', { a: ['n01440764', 'a'] }],
    ['a bad entry', { '0': 'n01440764' }],
    ['a duplicate wnid', { '0': ['n01440764', 'a'], '1': ['n01440764', 'b'] }],
  ])('rejects %s with LABELS_INVALID', (_what, json) => {
    expect(codeOf(() => loadClassIndex(json))).toBe('LABELS_INVALID');
  });

  it('says what the file should look like', () => {
    expect(() => loadClassIndex({ '0': ['n01440764', 'a'], '5': ['n1', 'b'] })).toThrow(/keys 0\.\.N−1/);
  });
});

describe('datasetFromFiles', () => {
  const idx = loadClassIndex(SMALL_INDEX);

  it('labels by the WordNet id at the start of the name (or the parent folder), sorted, ignoring the rest', () => {
    const ds = datasetFromFiles(
      [
        file('n01484850_17.jpg'),
        file('n01440764.JPEG'),
        file('n01443537_goldfish.JPEG'),
        file('n01440764/ILSVRC2012_val_00000293.JPEG'),
        file('README.txt'),
        file('n01440764.txt'),
        file('n99999999.JPEG'),
        file('photo.png'),
      ],
      idx,
      'mine',
    );
    expect(ds.items.map((i) => [i.id, i.label])).toEqual([
      ['n01440764.JPEG', 0],
      ['n01440764/ILSVRC2012_val_00000293.JPEG', 0],
      ['n01443537_goldfish.JPEG', 1],
      ['n01484850_17.jpg', 2],
    ]);
    expect(ds.ignored).toBe(4);
    expect(ds.ignoredNames).toContain('n99999999.JPEG');
    expect(ds.classes).toBe(3);
    expect(ds.name).toBe('mine');
  });

  it('reads bytes lazily through the file', async () => {
    const ds = datasetFromFiles([file('n01440764.JPEG')], idx);
    expect(new TextDecoder().decode(await ds.items[0].read())).toBe('n01440764.JPEG');
  });

  it('no usable image → DATA_EMPTY saying how files should be named', () => {
    expect(codeOf(() => datasetFromFiles([file('a.txt'), file('cat.jpg')], idx))).toBe('DATA_EMPTY');
    expect(() => datasetFromFiles([], idx)).toThrow(/n01440764\.JPEG/);
  });

  it('wnidOfFileName', () => {
    expect(wnidOfFileName('n01440764_tench.JPEG')).toBe('n01440764');
    expect(wnidOfFileName('val/n01440764/x.JPEG')).toBe('n01440764');
    expect(wnidOfFileName('x_n01440764.JPEG')).toBeUndefined();
  });
});

describe('sampleSplits', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const a = sampleSplits(1000, 64, 200, 42);
    expect(sampleSplits(1000, 64, 200, 42)).toEqual(a);
    const b = sampleSplits(1000, 64, 200, 43);
    expect(b.eval).not.toEqual(a.eval);
    expect(b.calib).not.toEqual(a.calib);
  });

  it('returns sorted, disjoint, in-range index lists of the requested sizes', () => {
    const { calib, eval: ev } = sampleSplits(100, 30, 70, 7);
    expect(calib.length).toBe(30);
    expect(ev.length).toBe(70);
    expect([...calib].sort((x, y) => x - y)).toEqual(calib);
    expect([...ev].sort((x, y) => x - y)).toEqual(ev);
    expect(new Set([...calib, ...ev]).size).toBe(100);
    expect(Math.min(...calib, ...ev)).toBe(0);
    expect(Math.max(...calib, ...ev)).toBe(99);
  });

  it('changing the calibration size does not change the evaluation images (and vice versa)', () => {
    const s32 = sampleSplits(1000, 32, 500, 1);
    const s256 = sampleSplits(1000, 256, 500, 1);
    expect(s256.eval).toEqual(s32.eval);
    // a larger calibration set contains the smaller one
    expect(s32.calib.every((i) => s256.calib.includes(i))).toBe(true);
    expect(sampleSplits(1000, 32, 100, 1).calib).toEqual(s32.calib);
  });

  it('too many requested → DATA_TOO_FEW_IMAGES with the numbers', () => {
    expect(codeOf(() => sampleSplits(100, 64, 50, 0))).toBe('DATA_TOO_FEW_IMAGES');
    expect(() => sampleSplits(100, 64, 50, 0)).toThrow(
      /100 usable images.*64 calibration \+ 50 evaluation.*at most 36/,
    );
    expect(maxEval(100, 64)).toBe(36);
    expect(maxEval(10, 64)).toBe(0);
  });

  it('edge cases and invalid arguments', () => {
    expect(sampleSplits(5, 0, 0, 3)).toEqual({ calib: [], eval: [] });
    expect(sampleSplits(5, 5, 0, 3).calib).toEqual([0, 1, 2, 3, 4]);
    expect(codeOf(() => sampleSplits(10, -1, 2, 0))).toBe('ARG_INVALID');
    expect(codeOf(() => sampleSplits(10, 1.5, 2, 0))).toBe('ARG_INVALID');
    expect(codeOf(() => sampleSplits(10, 1, 2, 0.5))).toBe('ARG_INVALID');
    // seeds above 2^32 still matter
    expect(sampleSplits(50, 10, 10, 2 ** 33).eval).not.toEqual(sampleSplits(50, 10, 10, 0).eval);
  });
});
