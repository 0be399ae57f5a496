/**
 * The registry's image set and mirrors on the real sample (../shared/data, read in place;
 * a fake web plays the public hosts and mirrors, nothing reaches the internet): the
 * embedded manifest is current, the registry set has the fingerprint of a local copy,
 * a split downloads only its files, verified, once; `npm run mirror` writes a verified,
 * complete mirror from local files or from the "public" sources, and a client finds the
 * development MobileNet-V2 in it by its catalog.
 */
import { mkdtempSync, readFileSync, writeFileSync, cpSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLASS_INDEX, HAVE_SHARED_DATA, SAMPLE_DIR, SHARED_DATA } from '../support/shared-data.ts';
import { fakeWeb, memoryStore, type Route } from '../support/fake-web.ts';
import { buildSampleManifest } from '../../src/cli/image-manifest.ts';
import { IMAGENET_SAMPLE_ROWS } from '../../src/lib/data/manifests/imagenet-sample.ts';
import { classIndexText, getImageSet, parseManifestRows, SAMPLE_COMMIT } from '../../src/lib/data/image-sets.ts';
import { openRegistryImages } from '../../src/lib/data/registry-images.ts';
import { loadImageFolder } from '../../src/lib/data/dataset.node.ts';
import { fingerprintOf } from '../../src/lib/data/fingerprint.ts';
import { writeMirror } from '../../src/cli/mirror.ts';
import { parseCatalog } from '../../src/lib/data/catalog.ts';
import { fetchWithFiles, mirrorBases } from '../../src/lib/data/file-store.node.ts';
import { datasetFromManifest } from '../../src/lib/data/sources.ts';
import { getModelEntry, findModelBySha256 } from '../../src/lib/models/registry.ts';
import { getModelFile, modelCandidates } from '../../src/lib/models/sources.ts';
import { DownloadError, type TransferProgress } from '../../src/lib/data/downloads.ts';
import { sha256Hex } from '../../src/lib/util/sha256.ts';
import { cliRegistryDownloads } from '../../src/cli/registry-downloads.ts';

const RAW = `https://raw.githubusercontent.com/EliSchwartz/imagenet-sample-images/${SAMPLE_COMMIT}/`;
const CDN = `https://cdn.jsdelivr.net/gh/EliSchwartz/imagenet-sample-images@${SAMPLE_COMMIT}/`;
const sample = getImageSet('imagenet-sample');

/** Routes serving the shared sample under its public names at `base`. */
async function publicRoutes(base: string): Promise<Record<string, Route>> {
  const m = await sample.load();
  const routes: Record<string, Route> = {};
  for (const f of m.files)
    routes[`${base}${encodeURIComponent(f.file)}`] = {
      bytes: new Uint8Array(readFileSync(join(SAMPLE_DIR, f.id))),
      type: 'image/jpeg',
    };
  return routes;
}

describe.skipIf(!HAVE_SHARED_DATA)('the registry image set on the real sample', () => {
  it('the embedded manifest is the one the shared sample gives (npm run make-image-manifest is current)', async () => {
    expect(await buildSampleManifest(SHARED_DATA)).toEqual(parseManifestRows(IMAGENET_SAMPLE_ROWS));
    const m = await sample.load();
    expect(classIndexText(m.classIndex)).toBe(readFileSync(CLASS_INDEX, 'utf8'));
  });

  it('has the fingerprint of the local copy, and a split downloads only its files, verified, once', async () => {
    const folder = await loadImageFolder(SAMPLE_DIR, CLASS_INDEX);
    // the first mirror has one damaged file and lacks another; the public source has all
    const mirror = 'http://10.0.0.5/qp/';
    const routes = await publicRoutes(RAW);
    const m = await sample.load();
    const web = fakeWeb(routes);
    const store = memoryStore();
    const reg = await openRegistryImages('imagenet-sample', { env: { fetch: web.fetch }, store, mirrors: [mirror] });
    expect(await fingerprintOf(reg.dataset)).toBe(await fingerprintOf(folder));
    const files = reg.filesFor({ calib: 16, eval: 48, seed: 0 });
    expect(files).toHaveLength(64);
    const [damaged, missing, ...rest] = files;
    for (const f of rest)
      web.routes.set(
        `${mirror}imagenet-sample/${encodeURIComponent(f.file)}`,
        routes[`${RAW}${encodeURIComponent(f.file)}`],
      );
    const wrong = new Uint8Array(readFileSync(join(SAMPLE_DIR, rest[0].id)));
    web.routes.set(`${mirror}imagenet-sample/${encodeURIComponent(damaged.file)}`, { bytes: wrong });
    const progress: TransferProgress[] = [];
    await reg.prefetch(files, { onProgress: (p) => progress.push(p) });
    const got = (u: string) => web.seen.filter((s) => s === `GET ${u}`).length;
    // the damaged and the missing file came from the public source after the mirror failed
    expect(got(`${RAW}${encodeURIComponent(damaged.file)}`)).toBe(1);
    expect(got(`${RAW}${encodeURIComponent(missing.file)}`)).toBe(1);
    expect(web.seen.filter((s) => s.startsWith(`GET ${RAW}`))).toHaveLength(2);
    expect(web.seen.filter((s) => s.startsWith(`GET ${mirror}`))).toHaveLength(64);
    expect(progress.at(-1)).toMatchObject({ files: 64, totalFiles: 64, cached: 0 });
    expect(progress.at(-1)!.bytes).toBe(files.reduce((s, f) => s + f.bytes, 0));
    expect(store.map.size).toBe(64);
    // the items read the verified bytes, the same as the local files
    const item = reg.dataset.items.find((i) => i.id === missing.id)!;
    expect(await item.read()).toEqual(new Uint8Array(readFileSync(join(SAMPLE_DIR, missing.id))));
    // a second visit downloads nothing
    const n = web.seen.length;
    const again = await openRegistryImages('imagenet-sample', { env: { fetch: web.fetch }, store, mirrors: [mirror] });
    await again.prefetch(files);
    for (const f of files.slice(0, 5)) await again.dataset.items[f.label].read();
    expect(web.seen.length).toBe(n);
    expect(m.files).toHaveLength(1000);
  });

  it('falls back from GitHub to jsDelivr', async () => {
    const web = fakeWeb(await publicRoutes(CDN));
    const reg = await openRegistryImages('imagenet-sample', { env: { fetch: web.fetch } });
    const files = reg.filesFor({ calib: 2, eval: 2, seed: 1 });
    await reg.prefetch(files);
    expect(web.seen.filter((s) => s.startsWith(`GET ${RAW}`))).toHaveLength(4);
    expect(web.seen.filter((s) => s.startsWith(`GET ${CDN}`))).toHaveLength(4);
    const one = reg.dataset.items[files[0].label];
    expect((await one.read()).byteLength).toBe(files[0].bytes);
  });
});

describe.skipIf(!HAVE_SHARED_DATA)('npm run mirror', () => {
  it('from local files: every file under its public name, verified, with a catalog; a re-run writes nothing', async () => {
    const out = mkdtempSync(join(tmpdir(), 'qp-mirror-'));
    const lines: string[] = [];
    const r = await writeMirror({ out, from: SHARED_DATA, log: (l) => lines.push(l) });
    expect(r.missingModels).toEqual(['resnet18', 'efficientnet-lite0']);
    expect(r.written).toBe(1003);
    const catalog = parseCatalog(readFileSync(join(out, 'catalog.json'), 'utf8'));
    expect(catalog.files).toHaveLength(1003);
    for (const f of catalog.files) {
      const bytes = new Uint8Array(readFileSync(join(out, ...f.path.split('/'))));
      expect(bytes.byteLength).toBe(f.bytes);
      expect(await sha256Hex(bytes)).toBe(f.sha256);
    }
    expect(catalog.files.find((f) => f.path === 'models/mobilenetv2-7-fp32.onnx')).toMatchObject({
      model: 'mobilenet-v2',
      sha256: 'f00130594d83447f5f46429a6c3b2f886036567cb61fe573fd171e7da07eab04',
    });
    expect(readdirSync(join(out, 'imagenet-sample'))).toContain("n03590841_jack-o'-lantern.JPEG");
    expect(readFileSync(join(out, 'imagenet-sample/imagenet_class_index.json'), 'utf8')).toBe(
      readFileSync(CLASS_INDEX, 'utf8'),
    );
    expect((await writeMirror({ out, from: SHARED_DATA })).written).toBe(0);

    // the app's "folder URL with manifest.json" loads the mirror's set as it is today
    const folderFetch = { fetch: fetchWithFiles(), base: pathToFileURL(out).href + '/' };
    const ds = await datasetFromManifest(folderFetch, 'imagenet-sample/', new AbortController().signal);
    expect(ds.items).toHaveLength(1000);
    expect((await ds.items[0].read()).byteLength).toBe(100_582);

    // a client (the CLI with QP_MIRROR=<folder>) finds the development copy by the catalog
    const [base] = mirrorBases(out);
    const mnv2 = getModelEntry('mobilenet-v2');
    const cands = modelCandidates(mnv2, { mirrors: [{ base, catalog }] });
    const web = fakeWeb();
    const got = await getModelFile({ fetch: fetchWithFiles(web.fetch) }, mnv2, cands);
    expect(got.sha256).toBe('f00130594d83447f5f46429a6c3b2f886036567cb61fe573fd171e7da07eab04');
    expect(got.registryFile).toBe(false);
    expect(findModelBySha256(got.sha256)?.id).toBe('mobilenet-v2');
    expect(web.seen).toEqual([]); // never went to the internet
  });

  it('refuses a local copy whose bytes differ, naming both hashes', async () => {
    const from = mkdtempSync(join(tmpdir(), 'qp-from-'));
    cpSync(SHARED_DATA, from, { recursive: true, filter: (p) => !p.includes('/models') });
    const victim = join(from, 'imagenet-sample', 'n01440764.JPEG');
    const bytes = new Uint8Array(readFileSync(victim));
    bytes[1000] ^= 1;
    writeFileSync(victim, bytes);
    const out = mkdtempSync(join(tmpdir(), 'qp-mirror-'));
    const e = (await writeMirror({ out, from, models: [] }).catch((x: unknown) => x)) as Error & { code: string };
    expect(e.code).toBe('DATA_SHA_MISMATCH');
    expect(e.message).toContain(
      `n01440764.JPEG has sha256 ${await sha256Hex(bytes)}, not 98f7e89b26142f7bdb61f3a627dee89729b0bb07a29e9e7f3be9d394c00c6f01`,
    );
  });

  it('from the public sources: downloads verified files, and refuses a model whose bytes differ', async () => {
    const out = mkdtempSync(join(tmpdir(), 'qp-mirror-'));
    const web = fakeWeb(await publicRoutes(RAW));
    const r = await writeMirror({ out, env: { fetch: web.fetch }, models: [] });
    expect(r.written).toBe(1002); // 1,000 images, the class index, manifest.json
    expect(web.seen).toHaveLength(1000);
    // the public MobileNet-V2 URL serving other bytes (here the development copy) is refused
    const mnv2 = getModelEntry('mobilenet-v2');
    web.routes.set(mnv2.downloads[0].url, {
      bytes: new Uint8Array(readFileSync(join(SHARED_DATA, 'models/mobilenetv2-7-fp32.onnx'))),
    });
    const e = await writeMirror({ out, env: { fetch: web.fetch }, models: ['mobilenet-v2'] }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DownloadError);
    expect((e as DownloadError).code).toBe('MODEL_SHA_MISMATCH');
    expect((e as DownloadError).message).toContain(
      'https://huggingface.co has a file of 13,965,019 bytes there, not the 13,964,571 bytes expected',
    );
  });

  it('the CLI with QP_MIRROR (a folder) and QP_CACHE_DIR: images and the model from the mirror, into the cache, once', async () => {
    const out = mkdtempSync(join(tmpdir(), 'qp-mirror-'));
    await writeMirror({ out, from: SHARED_DATA, models: ['mobilenet-v2'] });
    const cache = mkdtempSync(join(tmpdir(), 'qp-cache-'));
    const env = { QP_MIRROR: out, QP_CACHE_DIR: cache };
    const r = cliRegistryDownloads(env);
    expect(r.cacheDir).toBe(cache);
    const images = await r.openImages('imagenet-sample');
    const files = images.filesFor({ calib: 8, eval: 24, seed: 0 });
    await images.prefetch(files);
    expect(readdirSync(join(cache, 'sha256')).sort()).toEqual(files.map((f) => f.sha256).sort());
    const m = await r.modelFile('mobilenet-v2');
    expect(m).toMatchObject({ cached: false, registryFile: false });
    expect(m.sha256).toBe('f00130594d83447f5f46429a6c3b2f886036567cb61fe573fd171e7da07eab04');
    expect(m.url).toBe(`${pathToFileURL(out).href}/models/mobilenetv2-7-fp32.onnx`);
    // a second run (a new process) finds both in the cache
    const again = cliRegistryDownloads(env);
    expect(await again.modelFile('mobilenet-v2', { sha256: m.sha256 })).toMatchObject({ cached: true });
    const img = (await again.openImages('imagenet-sample')).dataset.items[files[0].label];
    expect((await img.read()).byteLength).toBe(files[0].bytes);
  });
});
