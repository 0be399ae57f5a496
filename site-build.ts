/**
 * Vite plugins that make the build a site for any static host, and let the dev server use
 * mirrors:
 * - sitePolicy: the build's `_headers` (Netlify / Cloudflare Pages) and the `<meta>`
 *   policy in index.html, both from security-headers.ts, with the origins of the plain-http
 *   mirrors that `public/site.json` lists added to connect-src (one source of truth; never a
 *   hand-kept copy).
 * - devMirrors: QP_MIRROR for `npm run dev` / `preview`: `/site.json` lists its entries, and
 *   a folder entry is served read-only under `/qp-mirror/<n>/`.
 * Must not: change what the app's code does; read anything but site.json and mirror folders.
 */
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Plugin } from 'vite';
import { headersFile, ISOLATION_HEADERS, withMetaPolicy } from './security-headers.ts';
import { mirrorConnectSources, parseMirrorList, parseSiteConfig, type MirrorSpec } from './src/lib/data/mirrors.ts';

/** The mirrors of `public/site.json` (none when absent) and the connect-src sources they need. */
export function siteMirrors(root: string): { mirrors: string[]; connect: string[] } {
  const file = resolve(root, 'public/site.json');
  if (!existsSync(file)) return { mirrors: [], connect: [] };
  const { mirrors } = parseSiteConfig(readFileSync(file, 'utf8'), file);
  return { mirrors, connect: mirrorConnectSources(mirrors) };
}

/** QP_MIRROR as the dev server offers it: URLs as given, folder n as `/qp-mirror/n/`. */
export function devMirrorList(value: string | undefined): { specs: MirrorSpec[]; urls: string[]; connect: string[] } {
  const specs = parseMirrorList(value);
  const urls = specs.map((m, i) => (m.kind === 'url' ? m.url : `/qp-mirror/${i}/`));
  return { specs, urls, connect: mirrorConnectSources(urls) };
}

/** Build only: `_headers` and the meta policy, for the given extra connect-src sources. */
export function sitePolicy(connect: readonly string[]): Plugin {
  return {
    name: 'qp-site-policy',
    apply: 'build',
    transformIndexHtml: { order: 'post', handler: (html) => withMetaPolicy(html, { connect }) },
    generateBundle() {
      this.emitFile({ type: 'asset', fileName: '_headers', source: headersFile({ connect }) });
    },
  };
}

const TYPES: Record<string, string> = {
  '.json': 'application/json; charset=utf-8',
  '.jpeg': 'image/jpeg',
  '.jpg': 'image/jpeg',
  '.png': 'image/png',
  '.onnx': 'application/octet-stream',
};

/** Dev and preview: `/site.json` from QP_MIRROR, and its folders under `/qp-mirror/<n>/`. */
export function devMirrors(value: string | undefined): Plugin {
  const { specs, urls } = devMirrorList(value);
  const handler = (req: IncomingMessage, res: ServerResponse, next: () => void) => {
    if (!specs.length) return next();
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const headers = {
      'Cache-Control': 'no-cache',
      'Cross-Origin-Resource-Policy': 'same-origin',
      ...ISOLATION_HEADERS,
    };
    if (path === '/site.json') {
      res.writeHead(200, { ...headers, 'Content-Type': TYPES['.json'] });
      return res.end(JSON.stringify({ mirrors: urls }));
    }
    const m = /^\/qp-mirror\/(\d+)\/(.*)$/.exec(path);
    const spec = m ? specs[Number(m[1])] : undefined;
    if (!m || spec?.kind !== 'folder') return next();
    const dir = resolve(spec.path);
    const file = resolve(dir, decodeURIComponent(m[2]));
    if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
      return res.end(`Not in the mirror ${join(spec.path, m[2])}.`);
    }
    res.writeHead(200, {
      ...headers,
      'Content-Type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': String(statSync(file).size),
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file).pipe(res);
  };
  return {
    name: 'qp-dev-mirrors',
    apply: (_config, env) => env.command === 'serve' || !!env.isPreview,
    configureServer: (server) => void server.middlewares.use(handler),
    configurePreviewServer: (server) => void server.middlewares.use(handler),
  };
}
