/**
 * Data and model bytes from URLs and picked files (src/lib/data/sources.ts), against a
 * fake fetch: manifests, class indexes, picked files, model downloads, and the
 * full-sentence errors for each way they go wrong.
 */
import { describe, expect, it } from 'vitest';
import { readModelBody } from '../../src/lib/data/read-model.ts';
import {
  classIndexFromUrl,
  datasetFromManifest,
  datasetFromPickedFiles,
  downloadModel,
  type Fetcher,
} from '../../src/lib/data/sources.ts';
import { QpError } from '../../src/lib/util/errors.ts';

const CLASS_INDEX = { '0': ['n01440764', 'tench'], '1': ['n01443537', 'goldfish'] };
const enc = (s: string) => new TextEncoder().encode(s);

/** A fetch that serves `routes` (absolute URL → body and content type) and 404 otherwise. */
function fakeFetcher(
  routes: Record<string, { body: string | Uint8Array<ArrayBuffer>; type?: string }>,
): Fetcher & { seen: string[] } {
  const seen: string[] = [];
  const f = async (input: RequestInfo | URL): Promise<Response> => {
    const url = String(input);
    seen.push(url);
    const r = routes[url];
    if (!r) return new Response('no', { status: 404, statusText: 'Not Found' });
    return new Response(r.body, { status: 200, headers: { 'content-type': r.type ?? 'application/octet-stream' } });
  };
  return { fetch: f as typeof fetch, base: 'http://host/app/', seen };
}

const signal = new AbortController().signal;

async function codeOf(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(QpError);
  expect((e as QpError).message).toMatch(/[.)]$/);
  return (e as QpError).code;
}

describe('datasetFromManifest', () => {
  const json = (x: unknown) => ({ body: JSON.stringify(x), type: 'application/json' });

  it("lists the manifest's files, labels them by the class index beside it and fetches images lazily", async () => {
    const f = fakeFetcher({
      'http://host/data/manifest.json': json({ files: ['n01440764_1.JPEG', 'n01443537_2.JPEG', 'readme.txt'] }),
      'http://host/data/imagenet_class_index.json': json(CLASS_INDEX),
      'http://host/data/n01443537_2.JPEG': { body: Uint8Array.of(1, 2, 3), type: 'image/jpeg' },
    });
    const ds = await datasetFromManifest(f, '/data', signal);
    expect(ds.name).toBe('/data/');
    expect(ds.items.map((i) => [i.id, i.label])).toEqual([
      ['n01440764_1.JPEG', 0],
      ['n01443537_2.JPEG', 1],
    ]);
    expect(ds.ignored).toBe(1);
    expect(f.seen).not.toContain('http://host/data/n01443537_2.JPEG');
    expect(Array.from(await ds.items[1].read())).toEqual([1, 2, 3]);
  });

  it("uses the manifest's classIndex relative to the manifest, or the one given", async () => {
    const f = fakeFetcher({
      'http://host/data/manifest.json': json({ files: ['n01440764_1.JPEG'], classIndex: '../labels.json' }),
      'http://host/labels.json': json(CLASS_INDEX),
      'http://other/ci.json': json(CLASS_INDEX),
    });
    expect((await datasetFromManifest(f, 'http://host/data/', signal)).classes).toBe(2);
    await datasetFromManifest(f, 'http://host/data/', signal, { classIndexUrl: 'http://other/ci.json' });
    expect(f.seen.at(-1)).toBe('http://other/ci.json');
  });

  it('refuses a missing, non-JSON or list-less manifest and an HTML image with clear codes', async () => {
    expect(await codeOf(datasetFromManifest(fakeFetcher({}), '/nope/', signal))).toBe('DATA_NOT_FOUND');
    expect(
      await codeOf(
        datasetFromManifest(fakeFetcher({ 'http://host/d/manifest.json': { body: 'files:' } }), '/d/', signal),
      ),
    ).toBe('DATA_NOT_FOUND');
    expect(
      await codeOf(
        datasetFromManifest(fakeFetcher({ 'http://host/d/manifest.json': json({ files: [1] }) }), '/d/', signal),
      ),
    ).toBe('DATA_NOT_FOUND');
    const f = fakeFetcher({
      'http://host/d/manifest.json': json({ files: ['n01440764_1.JPEG'] }),
      'http://host/d/imagenet_class_index.json': json(CLASS_INDEX),
      'http://host/d/n01440764_1.JPEG': { body: '<html></html>', type: 'text/html' },
    });
    const ds = await datasetFromManifest(f, '/d/', signal);
    expect(await codeOf(ds.items[0].read())).toBe('IMAGE_UNREADABLE');
  });

  it('refuses a class index that is not JSON', async () => {
    expect(
      await codeOf(classIndexFromUrl(fakeFetcher({ 'http://host/ci.json': { body: '{' } }), '/ci.json', signal)),
    ).toBe('LABELS_INVALID');
  });
});

describe('datasetFromPickedFiles', () => {
  const file = (name: string, body: string) => new File([body], name);

  it('takes the class index from a picked .json file', async () => {
    const ds = await datasetFromPickedFiles(
      [file('n01440764_1.JPEG', 'x'), file('classes.json', JSON.stringify(CLASS_INDEX))],
      async () => {
        throw new Error('the fallback must not be asked');
      },
    );
    expect([ds.name, ds.classes, ds.items.length]).toEqual(['files', 2, 1]);
  });

  it('falls back to the given class index, and says what to add when there is none', async () => {
    const picked = [file('n01443537_1.JPEG', 'x')];
    expect((await datasetFromPickedFiles(picked, async () => [['n01443537', 'goldfish']])).items[0].label).toBe(0);
    expect(await codeOf(datasetFromPickedFiles(picked, async () => undefined))).toBe('LABELS_INVALID');
    expect(await codeOf(datasetFromPickedFiles([file('ci.json', 'not json')], async () => undefined))).toBe(
      'LABELS_INVALID',
    );
  });
});

describe('downloadModel and the body reader', () => {
  it('downloads with progress and refuses a web page', async () => {
    const body = new Uint8Array(1000).fill(8);
    const f = fakeFetcher({
      'http://host/m.onnx': { body },
      'http://host/missing.onnx': { body: '<html>', type: 'text/html' },
    });
    const seen: number[] = [];
    const got = await downloadModel(f, '/m.onnx', 'm', signal, 1000, (p) => seen.push(p.loaded));
    expect(got).toEqual(body);
    expect(seen.at(-1)).toBe(1000);
    expect(await codeOf(downloadModel(f, '/missing.onnx', 'm', signal, undefined))).toBe('MODEL_NOT_ONNX');
    expect(await codeOf(downloadModel(f, '/gone.onnx', 'm', signal, undefined))).toBe('MODEL_DOWNLOAD_FAILED');
  });

  it('the body reader stops when aborted', async () => {
    const c = new AbortController();
    c.abort();
    const res = new Response(enc('abc'));
    await expect(readModelBody(res, { name: 'm', url: 'x', signal: c.signal, total: 3 })).rejects.toThrow();
  });
});
