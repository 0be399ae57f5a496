// prepareCrops (skip, cache, abort), DiskCropStore and loadImageFolder on synthetic folders.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import jpeg from 'jpeg-js';
import { prepareCrops, cropCacheKey } from '../../src/lib/data/crops.ts';
import { DECODER_ID, decodeImage, initJpegDecoder } from '../../src/lib/data/decode.ts';

beforeAll(() => initJpegDecoder());
import { preprocessToCrop, specKey, TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { DiskCropStore, loadImageFolder } from '../../src/lib/data/dataset.node.ts';
import type { CropStore, ImageSource, PreprocessSpec } from '../../src/lib/data/types.ts';
import { QpError } from '../../src/lib/util/errors.ts';

const SPEC: PreprocessSpec = { ...TORCHVISION_SPEC, resizeShorter: 16, crop: 14 };

function jpegBytes(w: number, h: number, seed: number): Uint8Array {
  const data = new Uint8Array(w * h * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + seed * 101) & 255;
  return new Uint8Array(jpeg.encode({ width: w, height: h, data }, 90).data);
}

class MemStore implements CropStore {
  map = new Map<string, Uint8Array>();
  gets = 0;
  async get(k: string) {
    this.gets++;
    return this.map.get(k);
  }
  async put(k: string, v: Uint8Array) {
    this.map.set(k, v);
  }
}

const item = (id: string, read: () => Promise<Uint8Array>, label = 0): ImageSource => ({ id, label, read });

describe('prepareCrops', () => {
  const good = [jpegBytes(20, 18, 1), jpegBytes(24, 16, 2), jpegBytes(17, 30, 3)];
  const items = (): ImageSource[] => [
    item('a.JPEG', async () => good[0]),
    item('empty.JPEG', async () => new Uint8Array(0)),
    item('b.JPEG', async () => good[1]),
    item('gone.JPEG', async () => {
      throw new Error('ENOENT: no such file');
    }),
    item('c.JPEG', async () => good[2]),
  ];

  it('returns crops in item order, skips unreadable images with a reason, reports progress', async () => {
    const progress: number[] = [];
    const r = await prepareCrops(items(), SPEC, undefined, {
      onProgress: (d, t) => progress.push(d * 100 + t),
      concurrency: 2,
    });
    expect(r.crops.map((c) => (c ? c.length : null))).toEqual([588, null, 588, null, 588]);
    expect(r.crops[2]).toEqual(preprocessToCrop(decodeImage(good[1]), SPEC));
    expect(r.skipped.map((s) => [s.id, s.code])).toEqual([
      ['empty.JPEG', 'IMAGE_UNREADABLE'],
      ['gone.JPEG', 'IMAGE_UNREADABLE'],
    ]);
    expect(r.skipped[1].message).toMatch(/gone\.JPEG.*ENOENT/);
    expect(progress).toEqual([105, 205, 305, 405, 505]);
  });

  it('uses the store: key is specKey/id, second run is all cache hits with identical crops', async () => {
    const store = new MemStore();
    const first = await prepareCrops(items(), SPEC, store, {});
    expect([...store.map.keys()].sort()).toEqual(
      ['a.JPEG', 'b.JPEG', 'c.JPEG'].map((id) => `${specKey(SPEC)}/${DECODER_ID}/${id}`),
    );
    expect(first.cacheHits).toBe(0);
    const reads: string[] = [];
    const again = await prepareCrops(
      items().map((it) => ({ ...it, read: () => (reads.push(it.id), it.read()) })),
      SPEC,
      store,
      {},
    );
    expect(again.cacheHits).toBe(3);
    expect(reads.sort()).toEqual(['empty.JPEG', 'gone.JPEG']);
    expect(again.crops).toEqual(first.crops);
    expect(cropCacheKey(SPEC, 'x', 'ns1')).toBe(`${specKey(SPEC)}/${DECODER_ID}/ns1/x`);
  });

  it('a cached entry of the wrong size is recomputed; failing cache writes do not fail the run', async () => {
    const store = new MemStore();
    store.map.set(`${specKey(SPEC)}/${DECODER_ID}/a.JPEG`, new Uint8Array(5));
    store.put = async () => {
      throw new QpError('STORAGE_QUOTA', 'full');
    };
    const r = await prepareCrops(items().slice(0, 1), SPEC, store, {});
    expect(r.crops[0]?.length).toBe(588);
    expect(r.cacheWriteFailures).toBe(1);
  });

  it('abort → CANCELLED (before start and mid-run)', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(prepareCrops(items(), SPEC, undefined, { signal: ac.signal })).rejects.toMatchObject({
      code: 'CANCELLED',
    });
    const ac2 = new AbortController();
    let reads = 0;
    const many = Array.from({ length: 20 }, (_, i) => item(`i${i}`, async () => (reads++, good[0])));
    await expect(
      prepareCrops(many, SPEC, undefined, {
        signal: ac2.signal,
        concurrency: 1,
        onProgress: (d) => d === 2 && ac2.abort(),
      }),
    ).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(reads).toBeLessThan(5);
  });
});

describe('DiskCropStore', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'qp-crops-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips crops atomically and keeps odd keys inside the cache folder', async () => {
    const store = new DiskCropStore(dir);
    expect(await store.get('bilinear-r256-c224-v1/missing')).toBeUndefined();
    const crop = new Uint8Array([1, 2, 3, 250]);
    await store.put('bilinear-r256-c224-v1/n01440764.JPEG', crop);
    await store.put('bilinear-r256-c224-v1/../../evil name?.JPEG', new Uint8Array([9]));
    await store.put('bilinear-r256-c224-v1/n01440764.JPEG', new Uint8Array([4, 5, 6, 7])); // overwrite
    expect(Array.from((await store.get('bilinear-r256-c224-v1/n01440764.JPEG'))!)).toEqual([4, 5, 6, 7]);
    expect(Array.from((await store.get('bilinear-r256-c224-v1/../../evil name?.JPEG'))!)).toEqual([9]);
    expect(store.pathFor('a/../../b').startsWith(dir + path.sep)).toBe(true);
    const files = readdirSync(path.join(dir, 'bilinear-r256-c224-v1'));
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(files).toContain('n01440764.JPEG.rgb');
  });
});

describe('loadImageFolder', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'qp-folder-'));
    mkdirSync(path.join(root, 'imgs'));
    writeFileSync(
      path.join(root, 'imagenet_class_index.json'),
      JSON.stringify({ '0': ['n01440764', 'tench'], '1': ['n01443537', 'goldfish'] }),
    );
    writeFileSync(path.join(root, 'imgs', 'n01443537_1.JPEG'), jpegBytes(20, 20, 4));
    writeFileSync(path.join(root, 'imgs', 'n01440764.JPEG'), jpegBytes(20, 20, 5));
    writeFileSync(path.join(root, 'imgs', 'notes.txt'), 'hi');
    mkdirSync(path.join(root, 'empty'));
    writeFileSync(path.join(root, 'bad.json'), '{"0": 5}');
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('finds the class index in the parent folder and labels the images', async () => {
    const ds = await loadImageFolder(path.join(root, 'imgs'));
    expect(ds.items.map((i) => [i.id, i.label])).toEqual([
      ['n01440764.JPEG', 0],
      ['n01443537_1.JPEG', 1],
    ]);
    expect(ds.ignored).toBe(1);
    expect(ds.name).toBe('imgs');
    expect(ds.cacheNamespace).toMatch(/^[0-9a-f]{12}$/);
    expect(decodeImage(await ds.items[0].read()).width).toBe(20);
  });

  it('clear errors: missing folder, empty folder, missing or invalid labels', async () => {
    await expect(loadImageFolder(path.join(root, 'nope'))).rejects.toMatchObject({ code: 'DATA_NOT_FOUND' });
    await expect(loadImageFolder(path.join(root, 'empty'))).rejects.toMatchObject({ code: 'DATA_EMPTY' });
    await expect(loadImageFolder(path.join(root, 'imgs'), path.join(root, 'nope.json'))).rejects.toMatchObject({
      code: 'LABELS_INVALID',
    });
    await expect(loadImageFolder(path.join(root, 'imgs'), path.join(root, 'bad.json'))).rejects.toThrow(
      /bad\.json: The class index is not valid/,
    );
    const lonely = mkdtempSync(path.join(tmpdir(), 'qp-nolabels-'));
    try {
      await expect(loadImageFolder(lonely)).rejects.toThrow(/No class index found/);
    } finally {
      rmSync(lonely, { recursive: true, force: true });
    }
  });
});
