/**
 * Mirror configuration (src/lib/data/mirrors.ts, catalog.ts, file-store.node.ts): site.json
 * with a sentence for each way it can be wrong, QP_MIRROR, mirror catalogs, the CLI's
 * cache folder and folder mirrors.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadSiteConfig, parseMirrorList, parseSiteConfig, resolveMirrors } from '../../src/lib/data/mirrors.ts';
import { catalogUrl, loadCatalog, parseCatalog, serializeCatalog } from '../../src/lib/data/catalog.ts';
import { defaultCacheDir, fetchWithFiles, folderStore, mirrorBases } from '../../src/lib/data/file-store.node.ts';
import { getFile } from '../../src/lib/data/downloads.ts';
import { sha256Hex } from '../../src/lib/util/sha256.ts';
import { fakeWeb, someBytes } from '../support/fake-web.ts';

const enc = (s: string) => new TextEncoder().encode(s);

describe('site.json', () => {
  it('reads mirrors in order, adds the trailing slash, drops repeats', () => {
    expect(parseSiteConfig('{"mirrors": ["./mirror", "http://10.0.0.5/qp/", "./mirror/"]}')).toEqual({
      mirrors: ['./mirror/', 'http://10.0.0.5/qp/'],
    });
    expect(parseSiteConfig('{}')).toEqual({ mirrors: [] });
  });

  it.each([
    [
      '{"mirrors": [',
      /site\.json is not valid JSON \(.+\)\. It must look like \{"mirrors": \["\.\/mirror\/", "http:\/\/10\.0\.0\.5\/qp\/"\]\}\./,
    ],
    ['["./mirror/"]', /site\.json is not a JSON object\./],
    ['{"mirror": ["./m/"]}', /site\.json has unknown key mirror\./],
    ['{"mirrors": "./m/"}', /has "mirrors" that is not a list/],
    ['{"mirrors": ["./m/", 3]}', /has mirror number 2 that is not a string/],
    ['{"mirrors": [""]}', /lists an empty mirror address/],
    ['{"mirrors": ["ftp://10.0.0.5/"]}', /a mirror must be an http: or https: address, not ftp:/],
    ['{"mirrors": ["http://u:p@10.0.0.5/"]}', /with a user name or password/],
    ['{"mirrors": ["http://10.0.0.5/?x=1"]}', /with a query or fragment/],
    ['{"mirrors": ["http://[bad/"]}', /which is not a URL/],
  ])('refuses %s with the reason', (text, message) => {
    expect(() => parseSiteConfig(text)).toThrow(message);
    try {
      parseSiteConfig(text);
    } catch (e) {
      expect((e as { code: string }).code).toBe('CONFIG_INVALID');
    }
  });

  it('resolves relative mirrors against the site root', () => {
    const cfg = parseSiteConfig('{"mirrors": ["./mirror/", "/shared/qp/", "http://10.0.0.5/qp/"]}');
    expect(resolveMirrors(cfg, 'https://me.github.io/qp/')).toEqual([
      'https://me.github.io/qp/mirror/',
      'https://me.github.io/shared/qp/',
      'http://10.0.0.5/qp/',
    ]);
  });

  it('loads site.json: absent or a fallback page means none, a broken one is an error, unreachable a notice', async () => {
    const root = 'https://qp.example/app/';
    const none = fakeWeb();
    expect(await loadSiteConfig(none.fetch, root)).toEqual({ mirrors: [] });
    expect(none.seen).toEqual(['GET https://qp.example/app/site.json']);
    const spa = fakeWeb({ [`${root}site.json`]: { page: '<!doctype html>' } });
    expect(await loadSiteConfig(spa.fetch, root)).toEqual({ mirrors: [] });
    const good = fakeWeb({
      [`${root}site.json`]: { bytes: enc('{"mirrors": ["./mirror/"]}'), type: 'application/json' },
    });
    expect(await loadSiteConfig(good.fetch, root)).toEqual({ mirrors: ['https://qp.example/app/mirror/'] });
    const bad = fakeWeb({ [`${root}site.json`]: { bytes: enc('{"mirrors": [1]}'), type: 'application/json' } });
    await expect(loadSiteConfig(bad.fetch, root)).rejects.toThrow(
      'https://qp.example/app/site.json has mirror number 1 that is not a string.',
    );
    const down = fakeWeb({ [`${root}site.json`]: { unreachable: true } });
    const r = await loadSiteConfig(down.fetch, root);
    expect(r.mirrors).toEqual([]);
    expect(r.notice).toMatch(/could not be read \(Failed to fetch\); only the public sources are used\./);
  });
});

describe('QP_MIRROR', () => {
  it('takes URLs and folders, comma-separated, in order', () => {
    expect(parseMirrorList(' http://10.0.0.5/qp , /srv/mirror,,file:///data/m/ ,https://cdn.example/m')).toEqual([
      { kind: 'url', url: 'http://10.0.0.5/qp/' },
      { kind: 'folder', path: '/srv/mirror' },
      { kind: 'folder', path: '/data/m/' },
      { kind: 'url', url: 'https://cdn.example/m/' },
    ]);
    expect(parseMirrorList(undefined)).toEqual([]);
    expect(parseMirrorList('C:\\mirror')).toEqual([{ kind: 'folder', path: 'C:\\mirror' }]);
  });

  it('refuses other schemes and broken URLs, naming the entry', () => {
    expect(() => parseMirrorList('ftp://x/')).toThrow(
      /QP_MIRROR lists "ftp:\/\/x\/": a mirror must be an http:, https: or file: URL or a folder, not ftp:\./,
    );
    expect(() => parseMirrorList('http://[x/')).toThrow(/QP_MIRROR lists "http:\/\/\[x\/", which is not a valid URL/);
  });

  it('gives base URLs, folders as file: URLs', () => {
    expect(mirrorBases('http://10.0.0.5/qp,./m', '/work')).toEqual(['http://10.0.0.5/qp/', 'file:///work/m/']);
  });
});

describe('mirror catalogs', () => {
  const file = { path: 'models/mobilenetv2-7-fp32.onnx', bytes: 12, sha256: 'a'.repeat(64), model: 'mobilenet-v2' };

  it('round-trips, sorted by path', () => {
    const text = serializeCatalog([
      { path: 'z.JPEG', bytes: 1, sha256: 'b'.repeat(64), imageSet: 'imagenet-sample' },
      file,
    ]);
    expect(parseCatalog(text).files.map((f) => f.path)).toEqual(['models/mobilenetv2-7-fp32.onnx', 'z.JPEG']);
    expect(catalogUrl('http://m/', "imagenet-sample/n03590841_jack-o'-lantern.JPEG")).toBe(
      "http://m/imagenet-sample/n03590841_jack-o'-lantern.JPEG",
    );
  });

  it.each([
    ['not json', /is not valid JSON/],
    ['{"format": 2, "files": []}', /"format" must be 1/],
    ['{"format": 1}', /has no "files" list/],
    [JSON.stringify({ format: 1, files: [{ ...file, path: '../etc/passwd' }] }), /entry 1 needs a relative "path"/],
    [JSON.stringify({ format: 1, files: [{ ...file, sha256: 'xyz' }] }), /64-digit "sha256"/],
  ])('refuses %s', (text, message) => {
    expect(() => parseCatalog(text, 'http://m/catalog.json')).toThrow(message);
  });

  it('a mirror without a catalog is used without one; a broken one gives a notice', async () => {
    expect(await loadCatalog(fakeWeb().fetch, 'http://m/')).toEqual({});
    const bad = fakeWeb({ 'http://m/catalog.json': { bytes: enc('{') } });
    expect((await loadCatalog(bad.fetch, 'http://m/')).notice).toMatch(
      /not a mirror catalog.*Until then the mirror is used without it\./,
    );
  });
});

describe("the CLI's cache and folder mirrors", () => {
  it('uses the platform cache directory unless QP_CACHE_DIR says otherwise', () => {
    expect(defaultCacheDir({}, 'linux', '/home/ann')).toBe('/home/ann/.cache/quantization-playground');
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/var/cache/ann' }, 'linux', '/home/ann')).toBe(
      '/var/cache/ann/quantization-playground',
    );
    expect(defaultCacheDir({ XDG_CACHE_HOME: 'relative' }, 'linux', '/home/ann')).toBe(
      '/home/ann/.cache/quantization-playground',
    );
    expect(defaultCacheDir({}, 'darwin', '/Users/ann')).toBe('/Users/ann/Library/Caches/quantization-playground');
    expect(defaultCacheDir({ LOCALAPPDATA: 'C:\\Users\\ann\\AppData\\Local' }, 'win32', 'C:\\Users\\ann')).toBe(
      'C:\\Users\\ann\\AppData\\Local\\quantization-playground\\Cache',
    );
    expect(defaultCacheDir({ QP_CACHE_DIR: '/tmp/qp' }, 'darwin', '/Users/ann')).toBe('/tmp/qp');
  });

  it('keeps verified files by sha256 in the folder: a second run downloads nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qp-cache-'));
    const store = folderStore(dir);
    const bytes = someBytes(3000, 4);
    const want = { name: 'a.JPEG', bytes: 3000, sha256: await sha256Hex(bytes), urls: ['https://h/a.JPEG'] };
    const web = fakeWeb({ 'https://h/a.JPEG': { bytes } });
    expect((await getFile({ fetch: web.fetch }, want, { store })).cached).toBe(false);
    expect((await getFile({ fetch: web.fetch }, want, { store })).cached).toBe(true);
    expect(web.seen).toHaveLength(1);
    expect(await store.get('0'.repeat(64))).toBeUndefined();
  });

  it('reads a folder mirror through file: URLs, with a real 404', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qp-mirror-'));
    writeFileSync(join(dir, "n03590841_jack-o'-lantern.JPEG"), someBytes(10, 1));
    const f = fetchWithFiles(fakeWeb().fetch);
    const base = pathToFileURL(dir).href + '/';
    const ok = await f(`${base}${encodeURIComponent("n03590841_jack-o'-lantern.JPEG")}`);
    expect(ok.status).toBe(200);
    expect((await ok.arrayBuffer()).byteLength).toBe(10);
    expect((await f(`${base}missing.JPEG`)).status).toBe(404);
    expect((await f('https://elsewhere/x')).status).toBe(404); // passed on to the inner fetch
  });
});
