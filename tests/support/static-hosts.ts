/**
 * Plain Node web servers that play the hosts of the production build in e2e tests (never
 * Vite): a static host serving a built `dist/` with the headers its `_headers` file gives
 * (or none, like GitHub Pages), and a second origin playing the public mirrors: the shared
 * sample under its public names (`imagenet-sample/n01440764_tench.JPEG`), the class index,
 * a legacy `manifest.json`, the shared model and a catalog, with CORS on or off, and chosen
 * files damaged (one byte flipped) or missing. Nothing reaches the internet.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import { createHash } from 'node:crypto';
import { headersFor } from '../../security-headers.ts';
import { classIndexText, getImageSet, type ImageFile } from '../../src/lib/data/image-sets.ts';
import { serializeCatalog, type CatalogFile } from '../../src/lib/data/catalog.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpeg': 'image/jpeg',
  '.jpg': 'image/jpeg',
  '.onnx': 'application/octet-stream',
};

export interface Host {
  /** http://127.0.0.1:PORT/ */
  url: string;
  origin: string;
  /** paths requested, in order */
  requests: string[];
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, path: string) => boolean | Promise<boolean>;

async function listen(handler: Handler, fallback: (res: ServerResponse, path: string) => void): Promise<Host> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(path);
    Promise.resolve(handler(req, res, path))
      .then((done) => {
        if (!done) fallback(res, path);
      })
      .catch((e: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(String(e));
      });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/`,
    origin,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: Buffer | string,
) {
  res.writeHead(status, { 'Content-Length': String(Buffer.byteLength(body)), ...headers });
  res.end(req.method === 'HEAD' ? undefined : body);
}

export interface SiteOptions {
  /** send the headers of `dir/_headers` (default true); false plays a host that sends none */
  headers?: boolean;
  /** more routes, tried first (a mirror inside the site, test modules); they see the full path */
  extra?: Handler;
  /** serve the site under this path, as GitHub Pages serves a project site (`/repo/`); default `/` */
  prefix?: string;
}

/**
 * A static host for a built site: files of `dir` with their content type and the headers
 * `_headers` gives their path; `/` and folders serve their index.html; anything else 404
 * (no fallback page: the app uses the hash for its state).
 */
export function serveSite(dir: string, opts: SiteOptions = {}): Promise<Host> {
  const root = resolve(dir);
  const rules = () =>
    opts.headers === false || !existsSync(join(root, '_headers')) ? '' : readFileSync(join(root, '_headers'), 'utf8');
  const prefix = opts.prefix ?? '/';
  return listen(
    async (req, res, full) => {
      if (opts.extra && (await opts.extra(req, res, full))) return true;
      if (!full.startsWith(prefix)) return false;
      const path = `/${full.slice(prefix.length)}`;
      let file = resolve(root, `.${path}`);
      if (!(file === root || file.startsWith(root + sep))) return false;
      if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
      if (!existsSync(file) || !statSync(file).isFile() || file.endsWith(`${sep}_headers`)) return false;
      const headers = { ...headersFor(rules(), path.endsWith('/') ? `${path}index.html` : path) };
      headers['Content-Type'] = TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
      send(req, res, 200, headers, readFileSync(file));
      return true;
    },
    (res, path) => {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', ...headersFor(rules(), path) });
      res.end(`Not found: ${path}`);
    },
  );
}

export interface MirrorOptions {
  /** ../shared/data */
  shared: string;
  /** send Access-Control-Allow-Origin: * (default true) */
  cors?: boolean;
  /** send Cross-Origin-Resource-Policy: cross-origin (default true), as CDNs do */
  corp?: boolean;
  /** public file names served with one byte flipped */
  damaged?: string[];
  /** public file names that answer 404 */
  missing?: string[];
}

export interface MirrorContent {
  /** the response for a path inside the mirror (`imagenet-sample/…`, `models/…`, `catalog.json`), or undefined */
  get(rel: string): { body: Buffer; type: string } | undefined;
  files: ImageFile[];
}

/** What `npm run mirror -- --from shared` would write, served from ../shared/data in place. */
export async function mirrorContent(opts: MirrorOptions): Promise<MirrorContent> {
  const set = getImageSet('imagenet-sample');
  const m = await set.load();
  const byName = new Map(m.files.map((f) => [f.file, f]));
  const modelFile = 'mobilenetv2-7-fp32.onnx';
  const modelPath = join(opts.shared, 'models', modelFile);
  const fixed = new Map<string, Buffer>([
    [`imagenet-sample/${set.classIndexFile.name}`, Buffer.from(classIndexText(m.classIndex))],
    [
      'imagenet-sample/manifest.json',
      Buffer.from(JSON.stringify({ files: m.files.map((f) => f.file), classIndex: set.classIndexFile.name })),
    ],
  ]);
  const catalog: CatalogFile[] = m.files.map((f) => ({
    path: `imagenet-sample/${f.file}`,
    bytes: f.bytes,
    sha256: f.sha256,
  }));
  if (existsSync(modelPath)) {
    const b = readFileSync(modelPath);
    catalog.push({
      path: `models/${modelFile}`,
      bytes: b.byteLength,
      sha256: createHash('sha256').update(b).digest('hex'),
      model: 'mobilenet-v2',
    });
  }
  fixed.set('catalog.json', Buffer.from(serializeCatalog(catalog)));
  return {
    files: m.files,
    get(rel) {
      const f = fixed.get(rel);
      if (f) return { body: f, type: TYPES['.json'] };
      if (rel === `models/${modelFile}` && existsSync(modelPath))
        return { body: readFileSync(modelPath), type: TYPES['.onnx'] };
      const name = rel.startsWith('imagenet-sample/') ? rel.slice('imagenet-sample/'.length) : '';
      const img = byName.get(name);
      if (!img || opts.missing?.includes(name)) return undefined;
      const body = readFileSync(join(opts.shared, 'imagenet-sample', img.id));
      if (opts.damaged?.includes(name)) body[body.length >> 1] ^= 0x01;
      return { body, type: TYPES['.jpeg'] };
    },
  };
}

/** A route for a mirror at `prefix` of a host (`/mirror/` inside the site: same origin). */
export function mirrorRoute(content: MirrorContent, prefix: string, headers: Record<string, string> = {}): Handler {
  return (req, res, path) => {
    if (!path.startsWith(prefix)) return false;
    const r = content.get(path.slice(prefix.length));
    if (!r) {
      send(req, res, 404, { 'Content-Type': 'text/plain', ...headers }, `Not in the mirror: ${path}`);
      return true;
    }
    send(req, res, 200, { 'Content-Type': r.type, ...headers }, r.body);
    return true;
  };
}

/** A second origin playing the public mirrors (CORS and CORP as the options say). */
export async function serveMirror(opts: MirrorOptions): Promise<Host> {
  const content = await mirrorContent(opts);
  const headers: Record<string, string> = {};
  if (opts.cors !== false) headers['Access-Control-Allow-Origin'] = '*';
  if (opts.corp !== false) headers['Cross-Origin-Resource-Policy'] = 'cross-origin';
  return listen(mirrorRoute(content, '/', headers), (res) => {
    res.writeHead(404);
    res.end();
  });
}
