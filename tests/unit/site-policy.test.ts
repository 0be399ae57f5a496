/**
 * The site's policy: CSP parsing and connect-src matching (src/lib/util/csp.ts), the
 * policy built from site.json's mirrors (security-headers.ts, src/lib/data/mirrors.ts),
 * the `_headers` file and the `<meta>` tag the build writes, and `npm run site`, which
 * rewrites a built site for new mirrors (src/cli/site.ts).
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  connectCheck,
  extraConnectSource,
  parsePolicy,
  policyAllowsConnect,
  sourcesAllow,
} from '../../src/lib/util/csp.ts';
import {
  contentSecurityPolicy,
  headersFile,
  headersFor,
  metaPolicyOf,
  securityHeaders,
  withMetaPolicy,
} from '../../security-headers.ts';
import { mirrorConnectSources, parseSiteConfig } from '../../src/lib/data/mirrors.ts';
import { updateSite } from '../../src/cli/site.ts';
import { devMirrorList, devMirrors, siteMirrors, sitePolicy } from '../../site-build.ts';

const SELF = 'https://qp.example/app/';

describe('connect-src matching', () => {
  const allows = (sources: string, url: string, self = SELF) => sourcesAllow(sources.split(' '), url, self);

  it("'self', scheme sources and their secure upgrade", () => {
    expect(allows("'self'", 'https://qp.example/x.onnx')).toBe(true);
    expect(allows("'self'", 'https://other.example/x')).toBe(false);
    expect(allows("'self'", 'wss://qp.example/hmr')).toBe(true);
    expect(allows('https:', 'https://cdn.jsdelivr.net/gh/a/b@c/d.JPEG')).toBe(true);
    expect(allows('https:', 'http://10.0.0.5/qp/a.JPEG')).toBe(false);
    expect(allows('http:', 'https://a.example/')).toBe(true);
    expect(allows("'none'", 'https://qp.example/')).toBe(false);
    expect(allows('*', 'http://10.0.0.5/')).toBe(true);
  });

  it('host sources: origin, port, path, wildcard', () => {
    expect(allows('http://10.0.0.5', 'http://10.0.0.5/qp/a.JPEG')).toBe(true);
    expect(allows('http://10.0.0.5', 'https://10.0.0.5/qp/a.JPEG')).toBe(true); // upgrade
    expect(allows('http://10.0.0.5', 'http://10.0.0.5:8080/qp/a.JPEG')).toBe(false);
    expect(allows('http://10.0.0.5:8080', 'http://10.0.0.5:8080/a')).toBe(true);
    expect(allows('http://10.0.0.5:*', 'http://10.0.0.5:9/a')).toBe(true);
    expect(allows('http://10.0.0.6', 'http://10.0.0.5/a')).toBe(false);
    expect(allows('http://10.0.0.5/qp/', 'http://10.0.0.5/qp/a.JPEG')).toBe(true);
    expect(allows('http://10.0.0.5/qp/', 'http://10.0.0.5/other/a.JPEG')).toBe(false);
    expect(allows('http://10.0.0.5/qp/a.JPEG', 'http://10.0.0.5/qp/a.JPEG')).toBe(true);
    expect(allows('*.example.org', 'https://cdn.example.org/a')).toBe(true); // scheme of the page
    expect(allows('*.example.org', 'http://cdn.example.org/a')).toBe(false);
  });

  it('falls back to default-src, and allows everything without either', () => {
    expect(policyAllowsConnect("default-src 'self'", 'https://a.example/', SELF)).toBe(false);
    expect(policyAllowsConnect("default-src 'self'; connect-src *", 'https://a.example/', SELF)).toBe(true);
    expect(policyAllowsConnect("img-src 'self'", 'http://a.example/', SELF)).toBe(true);
    expect(connectCheck(undefined, SELF)).toBeUndefined();
    expect(parsePolicy("Connect-Src 'self'; connect-src *").get('connect-src')).toEqual(["'self'"]);
  });

  it('the app policy allows its own origin and https:, not plain http unless listed', () => {
    const check = connectCheck(contentSecurityPolicy(), SELF)!;
    expect(check('https://raw.githubusercontent.com/a')).toBe(true);
    expect(check('/site.json')).toBe(true);
    expect(check('http://10.0.0.5/qp/a.JPEG')).toBe(false);
    const listed = connectCheck(contentSecurityPolicy({ connect: ['http://10.0.0.5'] }), SELF)!;
    expect(listed('http://10.0.0.5/qp/a.JPEG')).toBe(true);
    expect(listed('http://10.0.0.6/qp/a.JPEG')).toBe(false);
  });
});

describe('the policy from site.json', () => {
  it('adds the origin of each plain-http mirror, nothing for https: or the site itself', () => {
    const { mirrors } = parseSiteConfig(
      '{"mirrors": ["./mirror/", "http://10.0.0.5/qp/", "http://10.0.0.5:8080/b", "https://cdn.example/m/", "/abs/"]}',
    );
    expect(mirrors).toEqual([
      './mirror/',
      'http://10.0.0.5/qp/',
      'http://10.0.0.5:8080/b/',
      'https://cdn.example/m/',
      '/abs/',
    ]);
    expect(mirrorConnectSources(mirrors)).toEqual(['http://10.0.0.5', 'http://10.0.0.5:8080']);
    expect(extraConnectSource('https://cdn.example/')).toBeUndefined();
    const csp = contentSecurityPolicy({ connect: mirrorConnectSources(mirrors) });
    expect(parsePolicy(csp).get('connect-src')).toEqual([
      "'self'",
      'https:',
      'http://10.0.0.5',
      'http://10.0.0.5:8080',
    ]);
  });

  it('the dev policy keeps ws: for hot reload; the old boolean form still works', () => {
    expect(contentSecurityPolicy(true)).toBe(contentSecurityPolicy({ dev: true }));
    expect(parsePolicy(contentSecurityPolicy(true)).get('connect-src')).toEqual(["'self'", 'https:', 'ws:', 'wss:']);
    expect(securityHeaders(false)['Cross-Origin-Embedder-Policy']).toBe('require-corp');
  });

  it('the meta policy leaves out frame-ancestors (ignored in a meta tag), the header keeps it', () => {
    expect(contentSecurityPolicy()).toContain("frame-ancestors 'none'");
    expect(contentSecurityPolicy({ meta: true })).not.toContain('frame-ancestors');
    expect(contentSecurityPolicy({ meta: true })).toBe(contentSecurityPolicy().replace("; frame-ancestors 'none'", ''));
  });
});

describe('_headers and the meta tag', () => {
  it('_headers gives every path the isolation headers and the policy, and caches hashed assets for good', () => {
    const file = headersFile({ connect: ['http://10.0.0.5'] });
    const page = headersFor(file, '/index.html');
    expect(page['Cross-Origin-Opener-Policy']).toBe('same-origin');
    expect(page['Cross-Origin-Embedder-Policy']).toBe('require-corp');
    expect(page['Content-Security-Policy']).toBe(contentSecurityPolicy({ connect: ['http://10.0.0.5'] }));
    expect(page['Cache-Control']).toBeUndefined();
    const asset = headersFor(file, '/assets/ort-wasm-simd-threaded.asyncify-D5D0fo7z.wasm');
    expect(asset['Cache-Control']).toBe('public, max-age=31536000, immutable');
    expect(asset['Content-Security-Policy']).toBeDefined();
    expect(headersFor(file, '/sw.js')['Cache-Control']).toBe('no-cache');
    expect(headersFor(file, '/engine-keeper.js')['Cache-Control']).toBe('no-cache');
  });

  it('writes the meta policy after <meta charset> and replaces an old one', () => {
    const html = '<!doctype html><html><head>\n<meta charset="UTF-8" />\n<title>x</title></head></html>';
    const once = withMetaPolicy(html);
    expect(once.indexOf('charset')).toBeLessThan(once.indexOf('Content-Security-Policy'));
    expect(metaPolicyOf(once)).toBe(contentSecurityPolicy({ meta: true }));
    const twice = withMetaPolicy(once, { connect: ['http://10.0.0.5'] });
    expect(twice.match(/Content-Security-Policy/g)).toHaveLength(1);
    expect(metaPolicyOf(twice)).toBe(contentSecurityPolicy({ meta: true, connect: ['http://10.0.0.5'] }));
  });
});

describe('npm run site', () => {
  function fakeDist(): string {
    const dir = mkdtempSync(join(tmpdir(), 'qp-site-'));
    const html = withMetaPolicy('<html><head><meta charset="UTF-8" /><title>x</title></head></html>');
    writeFileSync(join(dir, 'index.html'), html);
    writeFileSync(join(dir, '_headers'), headersFile());
    const rev = createHash('md5').update(html).digest('hex');
    writeFileSync(
      join(dir, 'sw.js'),
      `s.precacheAndRoute([{url:"index.html",revision:"${rev}"},{url:"a.js",revision:null}])`,
    );
    return dir;
  }

  it('adds a mirror to site.json, its origin to _headers and the meta policy, and updates the precache revision', async () => {
    const dist = fakeDist();
    const r = await updateSite(dist, ['http://10.0.0.5/qp']);
    expect(r.mirrors).toEqual(['http://10.0.0.5/qp/']);
    expect(r.connect).toEqual(['http://10.0.0.5']);
    expect(r.changed.sort()).toEqual(['_headers', 'index.html', 'site.json', 'sw.js']);
    expect(JSON.parse(readFileSync(join(dist, 'site.json'), 'utf8'))).toEqual({ mirrors: ['http://10.0.0.5/qp/'] });
    const want = contentSecurityPolicy({ connect: ['http://10.0.0.5'] });
    expect(headersFor(readFileSync(join(dist, '_headers'), 'utf8'), '/')['Content-Security-Policy']).toBe(want);
    const html = readFileSync(join(dist, 'index.html'), 'utf8');
    expect(metaPolicyOf(html)).toBe(contentSecurityPolicy({ meta: true, connect: ['http://10.0.0.5'] }));
    const rev = createHash('md5').update(html).digest('hex');
    expect(readFileSync(join(dist, 'sw.js'), 'utf8')).toContain(`{url:"index.html",revision:"${rev}"}`);
    // running it again changes nothing
    expect((await updateSite(dist)).changed).toEqual([]);
  });

  it('follows a site.json edited by hand, and refuses a broken one with the reason', async () => {
    const dist = fakeDist();
    writeFileSync(join(dist, 'site.json'), '{"mirrors": ["./mirror/", "http://192.168.1.2:8000/"]}');
    const r = await updateSite(dist);
    expect(r.connect).toEqual(['http://192.168.1.2:8000']);
    writeFileSync(join(dist, 'site.json'), '{"mirrors": ["ftp://x/"]}');
    await expect(updateSite(dist)).rejects.toThrow(/a mirror must be an http: or https: address, not ftp:/);
    await expect(updateSite(join(dist, 'nope'))).rejects.toThrow(/has no index\.html/);
  });
});

describe('the build and dev-server plugins (site-build.ts)', () => {
  it('the build reads public/site.json: its plain-http origins go into _headers and the meta policy', async () => {
    const root = mkdtempSync(join(tmpdir(), 'qp-root-'));
    expect(siteMirrors(root)).toEqual({ mirrors: [], connect: [] });
    mkdirSync(join(root, 'public'));
    writeFileSync(join(root, 'public/site.json'), '{"mirrors": ["./mirror/", "http://10.0.0.5:8080/qp/"]}');
    const site = siteMirrors(root);
    expect(site.connect).toEqual(['http://10.0.0.5:8080']);
    const plugin = sitePolicy(site.connect);
    const html = (plugin.transformIndexHtml as { handler: (h: string) => string }).handler(
      '<html><head><meta charset="UTF-8" /></head></html>',
    );
    expect(metaPolicyOf(html)).toBe(contentSecurityPolicy({ meta: true, connect: ['http://10.0.0.5:8080'] }));
    const emitted: { fileName: string; source: string }[] = [];
    (plugin.generateBundle as (this: unknown) => void).call({ emitFile: (f: (typeof emitted)[0]) => emitted.push(f) });
    expect(emitted.map((e) => e.fileName)).toEqual(['_headers']);
    expect(emitted[0].source).toBe(headersFile({ connect: ['http://10.0.0.5:8080'] }));
    writeFileSync(join(root, 'public/site.json'), '{"mirrors": "x"}');
    expect(() => siteMirrors(root)).toThrow(/has "mirrors" that is not a list/);
  });

  it('the dev server answers /site.json from QP_MIRROR and serves a folder entry read-only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qp-devmirror-'));
    mkdirSync(join(dir, 'imagenet-sample'));
    writeFileSync(join(dir, 'imagenet-sample', "n03590841_jack-o'-lantern.JPEG"), 'jpeg');
    expect(devMirrorList(`http://10.0.0.5/qp/,${dir}`)).toMatchObject({
      urls: ['http://10.0.0.5/qp/', '/qp-mirror/1/'],
      connect: ['http://10.0.0.5'],
    });
    let handler!: (req: unknown, res: unknown, next: () => void) => void;
    const plugin = devMirrors(`http://10.0.0.5/qp/,${dir}`);
    (plugin.configureServer as (s: unknown) => void)({ middlewares: { use: (h: typeof handler) => (handler = h) } });
    const get = (url: string) =>
      new Promise<{ status: number; headers: Record<string, string>; body: string; next?: true }>((resolve) => {
        let status = 0;
        let headers: Record<string, string> = {};
        const chunks: Buffer[] = [];
        const res = Object.assign(new PassThrough(), {
          writeHead(s: number, h: Record<string, string>) {
            status = s;
            headers = h;
          },
        });
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('finish', () => resolve({ status, headers, body: Buffer.concat(chunks).toString() }));
        handler({ url, method: 'GET' }, res, () => resolve({ status: 0, headers: {}, body: '', next: true }));
      });
    const site = await get('/site.json');
    expect(JSON.parse(site.body)).toEqual({ mirrors: ['http://10.0.0.5/qp/', '/qp-mirror/1/'] });
    expect(site.headers['Cross-Origin-Embedder-Policy']).toBe('require-corp');
    const img = await get(`/qp-mirror/1/imagenet-sample/${encodeURIComponent("n03590841_jack-o'-lantern.JPEG")}`);
    expect([img.status, img.body, img.headers['Content-Type']]).toEqual([200, 'jpeg', 'image/jpeg']);
    expect((await get('/qp-mirror/1/nothing.JPEG')).status).toBe(404);
    expect((await get('/qp-mirror/1/..%2F..%2Fetc%2Fpasswd')).status).toBe(404);
    expect((await get('/qp-mirror/0/a.JPEG')).next).toBe(true); // a URL entry is not served here
    expect((await get('/index.html')).next).toBe(true);
  });
});
