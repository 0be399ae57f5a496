/**
 * The data layer on the real ImageNet sample of ../shared/data (skipped when it is absent):
 * the class index, the folder's labels in class order, and decoding of real JPEGs
 * (means measured with Pillow).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadImageFolder } from '../../src/lib/data/dataset.node.ts';
import { datasetFromFiles, loadClassIndex, type NamedFile } from '../../src/lib/data/dataset.ts';
import { decodeImage, initJpegDecoder } from '../../src/lib/data/decode.ts';
import { CLASS_INDEX, HAVE_SHARED_DATA, SAMPLE_DIR } from '../support/shared-data.ts';

const file = (name: string): NamedFile => ({ name, read: async () => new TextEncoder().encode(name) });
const classIndex = () => loadClassIndex(JSON.parse(readFileSync(CLASS_INDEX, 'utf8')));
const decodeSample = (name: string) => decodeImage(new Uint8Array(readFileSync(join(SAMPLE_DIR, name))), name);

describe.skipIf(!HAVE_SHARED_DATA)('the real ImageNet sample', () => {
  beforeAll(() => initJpegDecoder());

  it('has a class index of 1000 classes', () => {
    const idx = classIndex();
    expect(idx.length).toBe(1000);
    expect(idx[0]).toEqual(['n01440764', 'tench']);
    expect(idx[999][0]).toBe('n15075141');
  });

  it('sorted file i has class i (sorting gives the class order), also under the upstream names', () => {
    const realIdx = classIndex();
    const ds = datasetFromFiles(readdirSync(SAMPLE_DIR).map(file), realIdx, 'imagenet-sample');
    expect(ds.items.length).toBe(1000);
    expect(ds.ignored).toBe(0);
    ds.items.forEach((it, i) => expect(it.label).toBe(i));
    // upstream naming {wnid}_{name}.JPEG maps the same way
    const up = datasetFromFiles(
      realIdx.map(([w, n]) => file(`${w}_${n}.JPEG`)),
      realIdx,
    );
    expect(up.items.map((i) => i.label)).toEqual(realIdx.map((_, i) => i));
  });

  it('loads as a folder, with labels from the class index in the parent folder', async () => {
    const ds = await loadImageFolder(SAMPLE_DIR);
    expect(ds.items.length).toBe(1000);
    expect(ds.classes).toBe(1000);
    expect(ds.ignored).toBe(0);
    expect(ds.items[0]).toMatchObject({ id: 'n01440764.JPEG', label: 0 });
  });

  it('decodes n01440764.JPEG to 500×375 RGB with the mean Pillow gives (106.5, 111.3, 94.7)', () => {
    const img = decodeSample('n01440764.JPEG');
    expect([img.width, img.height]).toEqual([500, 375]);
    expect(img.data.length).toBe(500 * 375 * 3);
    const mean = [0, 0, 0];
    for (let i = 0; i < img.data.length; i++) mean[i % 3] += img.data[i];
    const n = 500 * 375;
    expect(mean[0] / n).toBeCloseTo(106.5, 0);
    expect(mean[1] / n).toBeCloseTo(111.3, 0);
    expect(mean[2] / n).toBeCloseTo(94.7, 0);
  });

  it('replicates a real grayscale JPEG (n02096051.JPEG) to three equal channels', () => {
    const img = decodeSample('n02096051.JPEG');
    expect([img.width, img.height]).toEqual([500, 330]);
    let sum = 0;
    let unequal = 0;
    for (let i = 0; i < img.data.length; i += 3) {
      if (img.data[i + 1] !== img.data[i] || img.data[i + 2] !== img.data[i]) unequal++;
      sum += img.data[i];
    }
    expect(unequal).toBe(0);
    expect(sum / (500 * 330)).toBeCloseTo(122.7, 0);
  });
});
