/**
 * The registry's image sets (src/lib/data/image-sets.ts) and where registry models come
 * from (src/lib/models/sources.ts): the embedded manifest, public file names and URLs in
 * mirror order, the files a split needs, the class index rebuilt byte for byte, model
 * candidates across mirrors and their catalogs, copies of a model's weights, and the
 * offline status store.
 */
import { describe, expect, it } from 'vitest';
import {
  classIndexText,
  filesForSplit,
  getImageSet,
  imageSetDataset,
  imageUrls,
  manifestFromRows,
  parseManifestRows,
  SAMPLE_COMMIT,
} from '../../src/lib/data/image-sets.ts';
import { sampleSplits } from '../../src/lib/data/dataset.ts';
import { datasetFingerprint } from '../../src/lib/data/fingerprint.ts';
import { findModelBySha256, getModelEntry, type ModelEntry } from '../../src/lib/models/registry.ts';
import { getModelFile, modelCandidates, publicModelFileName } from '../../src/lib/models/sources.ts';
import { DownloadError } from '../../src/lib/data/downloads.ts';
import { sha256Hex } from '../../src/lib/util/sha256.ts';
import { createOfflineStatus } from '../../src/lib/offline/status.ts';
import { fakeWeb, memoryStore, someBytes } from '../support/fake-web.ts';

const sample = getImageSet('imagenet-sample');

describe('the imagenet-sample image set', () => {
  it('embeds 1,000 files whose count and sizes match the registry entry', async () => {
    const m = await sample.load();
    expect(m.files).toHaveLength(sample.images);
    expect(m.files.reduce((s, f) => s + f.bytes, 0)).toBe(sample.totalBytes);
    expect(new Set(m.files.map((f) => f.sha256)).size).toBe(1000);
    expect(m.files[0]).toMatchObject({
      wnid: 'n01440764',
      name: 'tench',
      file: 'n01440764_tench.JPEG',
      id: 'n01440764.JPEG',
      label: 0,
    });
    // wnids ascend: class order is file-name order, as in a local copy
    expect(m.files.every((f, i) => i === 0 || m.files[i - 1].wnid < f.wnid)).toBe(true);
    expect(m.files.filter((f) => f.file.includes("'")).map((f) => f.file)).toEqual([
      "n02966687_carpenter's_kit.JPEG",
      "n03590841_jack-o'-lantern.JPEG",
      "n03992509_potter's_wheel.JPEG",
      "n12057211_yellow_lady's_slipper.JPEG",
    ]);
  });

  it('rebuilds imagenet_class_index.json byte for byte (the sha256 the registry names)', async () => {
    const m = await sample.load();
    const bytes = new TextEncoder().encode(classIndexText(m.classIndex));
    expect(bytes.byteLength).toBe(sample.classIndexFile.bytes);
    expect(await sha256Hex(bytes)).toBe(sample.classIndexFile.sha256);
    expect(classIndexText([['n1', "a'b"]])).toBe('{"0": ["n1", "a\'b"]}');
  });

  it('tries mirrors in order, then GitHub and jsDelivr pinned to the commit', () => {
    const urls = imageUrls(sample, "n03590841_jack-o'-lantern.JPEG", ['http://10.0.0.5/qp/', 'https://site/mirror/']);
    expect(urls).toEqual([
      "http://10.0.0.5/qp/imagenet-sample/n03590841_jack-o'-lantern.JPEG",
      "https://site/mirror/imagenet-sample/n03590841_jack-o'-lantern.JPEG",
      `https://raw.githubusercontent.com/EliSchwartz/imagenet-sample-images/${SAMPLE_COMMIT}/n03590841_jack-o'-lantern.JPEG`,
      `https://cdn.jsdelivr.net/gh/EliSchwartz/imagenet-sample-images@${SAMPLE_COMMIT}/n03590841_jack-o'-lantern.JPEG`,
    ]);
    expect(SAMPLE_COMMIT).toMatch(/^bc69043e[0-9a-f]{32}$/);
    expect(imageUrls(sample, 'a b.JPEG')[0]).toMatch(/\/a%20b\.JPEG$/);
  });

  it('a split needs only its calibration and evaluation files, the ones sampleSplits picks', async () => {
    const m = await sample.load();
    const files = filesForSplit(m, 32, 200, 0);
    const split = sampleSplits(1000, 32, 200, 0);
    expect(files.map((f) => f.label)).toEqual([...split.calib, ...split.eval].sort((a, b) => a - b));
    expect(filesForSplit(m, 128, 872, 0)).toHaveLength(1000);
    expect(() => filesForSplit(m, 500, 600, 0)).toThrow(/1000 usable images/);
  });

  it('as a Dataset: items named like a local copy, so the fingerprint is the folder one', async () => {
    const m = await sample.load();
    const ds = imageSetDataset(sample, m, async () => new Uint8Array());
    expect(ds.items[0]).toMatchObject({ id: 'n01440764.JPEG', label: 0 });
    expect(ds.items).toHaveLength(1000);
    // the fingerprint of a folder of {wnid}.JPEG files labelled by the class index
    const folder = m.classIndex.map(([w], label) => ({ id: `${w}.JPEG`, label }));
    expect(await datasetFingerprint(ds.items)).toBe(await datasetFingerprint(folder));
    expect(ds.cacheNamespace).toBe('registry:imagenet-sample');
  });

  it('refuses an unknown set and a broken manifest line', () => {
    expect(() => getImageSet('imagenet')).toThrow('There is no image set named "imagenet". Choose imagenet-sample');
    expect(() => parseManifestRows('n01440764\ttench\t12\tnothex')).toThrow(/line 1 is malformed/);
    expect(manifestFromRows(parseManifestRows(`n01440764\ttench\t12\t${'a'.repeat(64)}`)).classIndex).toEqual([
      ['n01440764', 'tench'],
    ]);
  });
});

describe('registry models from mirrors', () => {
  const mnv2 = getModelEntry('mobilenet-v2');
  const DEV = 'f00130594d83447f5f46429a6c3b2f886036567cb61fe573fd171e7da07eab04';
  const PUBLIC = mnv2.downloads[0];

  it('a copy of the weights under another sha256 is that model', () => {
    expect(findModelBySha256(DEV)?.id).toBe('mobilenet-v2');
    expect(findModelBySha256(PUBLIC.sha256)?.id).toBe('mobilenet-v2');
    expect(findModelBySha256('0'.repeat(64))).toBeUndefined();
  });

  it('without mirrors: the public URL of the default download', () => {
    const c = modelCandidates(mnv2);
    expect(c).toEqual([
      {
        name: 'mobilenetv2-12.onnx',
        bytes: PUBLIC.bytes,
        sha256: PUBLIC.sha256,
        urls: [PUBLIC.url],
        registryFile: true,
      },
    ]);
    expect(publicModelFileName(PUBLIC.url)).toBe('mobilenetv2-12.onnx');
  });

  it('a mirror without a catalog is tried by the public file name, before the public URL', () => {
    const c = modelCandidates(mnv2, { mirrors: [{ base: 'http://10.0.0.5/qp/' }] });
    expect(c).toHaveLength(1);
    expect(c[0].urls).toEqual(['http://10.0.0.5/qp/models/mobilenetv2-12.onnx', PUBLIC.url]);
  });

  it("a mirror's catalog offers its copies first (the development copy), then the internet", () => {
    const catalog = {
      format: 1 as const,
      files: [{ path: 'models/mobilenetv2-7-fp32.onnx', bytes: 13_965_019, sha256: DEV, model: 'mobilenet-v2' }],
    };
    const c = modelCandidates(mnv2, { mirrors: [{ base: 'http://10.0.0.5/qp/', catalog }] });
    expect(c.map((x) => [x.sha256, x.urls, x.registryFile])).toEqual([
      [DEV, ['http://10.0.0.5/qp/models/mobilenetv2-7-fp32.onnx'], false],
      [PUBLIC.sha256, [PUBLIC.url], true],
    ]);
    // a link names its exact file: only that one serves it
    const linked = modelCandidates(mnv2, { sha256: DEV, mirrors: [{ base: 'http://10.0.0.5/qp/', catalog }] });
    expect(linked.map((x) => x.sha256)).toEqual([DEV]);
    expect(modelCandidates(mnv2, { sha256: DEV })).toEqual([]); // nowhere to be had without that mirror
    expect(modelCandidates(mnv2, { sha256: '0'.repeat(64) })).toEqual([]);
    // a link to the MXNet alternate gets it from its own public URL
    expect(modelCandidates(mnv2, { sha256: mnv2.downloads[1].sha256 })[0].urls).toEqual([mnv2.downloads[1].url]);
  });

  it('downloads the first candidate that verifies, from the store when it has one', async () => {
    const a = someBytes(4000, 1);
    const b = someBytes(3000, 2);
    const entry: ModelEntry = {
      ...mnv2,
      downloads: [{ ...PUBLIC, url: 'https://hf.example/m.onnx', bytes: 4000, sha256: await sha256Hex(a) }],
      knownSha256: [await sha256Hex(b)],
    };
    const catalog = {
      format: 1 as const,
      files: [{ path: 'models/copy.onnx', bytes: 3000, sha256: await sha256Hex(b) }],
    };
    const web = fakeWeb({ 'https://hf.example/m.onnx': { bytes: a } });
    const cands = modelCandidates(entry, { mirrors: [{ base: 'http://m/', catalog }] });
    const store = memoryStore();
    // the mirror lacks its listed copy (404): the public file serves
    const r = await getModelFile({ fetch: web.fetch }, entry, cands, { store });
    expect(r).toMatchObject({
      sha256: await sha256Hex(a),
      url: 'https://hf.example/m.onnx',
      registryFile: true,
      cached: false,
    });
    expect(web.seen).toEqual(['GET http://m/models/copy.onnx', 'GET https://hf.example/m.onnx']);
    const again = await getModelFile({ fetch: web.fetch }, entry, cands, { store });
    expect(again.cached).toBe(true);
    expect(web.seen).toHaveLength(2);
    // nothing anywhere: every attempt in one error
    const err = await getModelFile({ fetch: fakeWeb().fetch }, entry, cands).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as DownloadError).code).toBe('MODEL_DOWNLOAD_FAILED');
    expect((err as DownloadError).message).toMatch(
      /^Could not download the model "MobileNet-V2 1\.0 \(copy\.onnx\)" from any of its 2 sources: http:\/\/m\/models\/copy\.onnx was not found \(404\); https:\/\/hf\.example\/m\.onnx was not found \(404\)\./,
    );
  });
});

describe('the offline status store', () => {
  it('tells subscribers, and applies an update only when one waits', async () => {
    const s = createOfflineStatus();
    const seen: boolean[] = [];
    const off = s.subscribe((x) => seen.push(x.updateAvailable));
    let applied = 0;
    s.setUpdater(async () => void applied++);
    await s.applyUpdate();
    expect(applied).toBe(0);
    s.set({ updateAvailable: true });
    await s.applyUpdate();
    expect(applied).toBe(1);
    off();
    s.set({ offlineReady: true });
    expect(seen).toEqual([false, true]);
    expect(s.get()).toEqual({ offlineReady: true, updateAvailable: true });
  });
});
