import { createReadStream, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { extname, join, resolve, sep } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { defineConfig, type Plugin } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { VitePWA } from 'vite-plugin-pwa';
import { ISOLATION_HEADERS as isolation, securityHeaders } from './security-headers.ts';
import { devMirrorList, devMirrors, siteMirrors, sitePolicy } from './site-build.ts';
import {
  ENGINE_CACHE,
  ENGINE_KEEPER_FILE,
  engineKeeperScript,
  findEngineBinaries,
} from './src/lib/offline/engine-cache.ts';

const CONTENT_TYPES: Record<string, string> = {
  '.json': 'application/json; charset=utf-8',
  '.jpeg': 'image/jpeg',
  '.jpg': 'image/jpeg',
  '.png': 'image/png',
  '.onnx': 'application/octet-stream',
  '.md': 'text/markdown; charset=utf-8',
};

/**
 * Dev/preview only: serve ../shared/data (or $QP_SHARED_DATA) read-only under /shared-data/,
 * with generated manifests (`imagenet-sample/manifest.json` {files, classIndex} and
 * `models/manifest.json` {files: [{name, size, sha256}]}), real content types, isolation headers
 * (the page is cross-origin isolated) and a real 404 — never Vite's SPA fallback
 * (index.html with 200), which would reach the model loader as a bogus ".onnx".
 * Nothing of it goes into a production build.
 */
/** Size and sha256 of a file, hashed once per modification (the app names registry copies by sha256). */
const facts = new Map<string, { mtime: number; size: number; sha256: string }>();
function fileFacts(file: string): { size: number; sha256: string } {
  const st = statSync(file);
  let f = facts.get(file);
  if (!f || f.mtime !== st.mtimeMs) {
    f = { mtime: st.mtimeMs, size: st.size, sha256: createHash('sha256').update(readFileSync(file)).digest('hex') };
    facts.set(file, f);
  }
  return { size: f.size, sha256: f.sha256 };
}

function sharedData(): Plugin {
  let dir = '';
  const handler = (req: IncomingMessage, res: ServerResponse, next: () => void) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (!url.pathname.startsWith('/shared-data/')) return next();
    const send = (status: number, type: string, body: string | Buffer) => {
      res.writeHead(status, {
        'Content-Type': type,
        'Cross-Origin-Resource-Policy': 'same-origin',
        'Cache-Control': 'no-cache',
        ...isolation,
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (!dir) return send(404, 'text/plain; charset=utf-8', 'No shared data on this server.');
    const rel = decodeURIComponent(url.pathname.slice('/shared-data/'.length));
    const listing = (sub: string) =>
      readdirSync(join(dir, sub))
        .filter((f) => !f.startsWith('.') && statSync(join(dir, sub, f)).isFile())
        .sort();
    if (rel === 'imagenet-sample/manifest.json') {
      const files = listing('imagenet-sample').filter((f) => /\.(jpe?g|png)$/i.test(f));
      return send(200, CONTENT_TYPES['.json'], JSON.stringify({ files, classIndex: '../imagenet_class_index.json' }));
    }
    if (rel === 'models/manifest.json') {
      const files = listing('models')
        .filter((f) => f.endsWith('.onnx'))
        .map((name) => ({ name, ...fileFacts(join(dir, 'models', name)) }));
      return send(200, CONTENT_TYPES['.json'], JSON.stringify({ files }));
    }
    const file = resolve(dir, rel);
    if (!(file === dir || file.startsWith(dir + sep)) || !existsSync(file) || !statSync(file).isFile()) {
      return send(404, 'text/plain; charset=utf-8', `Not found: ${rel}`);
    }
    const type = CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
    res.writeHead(200, {
      'Content-Type': type,
      'Content-Length': String(statSync(file).size),
      'Cross-Origin-Resource-Policy': 'same-origin',
      ...isolation,
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file).pipe(res);
  };
  return {
    name: 'qp-shared-data',
    apply: (_config, env) => env.command === 'serve' || !!env.isPreview,
    configResolved(config) {
      const candidate = process.env.QP_SHARED_DATA ?? resolve(config.root, '../shared/data');
      dir = existsSync(candidate) ? resolve(candidate) : '';
    },
    configureServer(server) {
      server.middlewares.use(handler);
    },
    configurePreviewServer(server) {
      server.middlewares.use(handler);
    },
  };
}

/**
 * Build only: writes ENGINE_KEEPER_FILE next to sw.js, naming the two engine binaries as
 * emitted (content-hashed) so the service worker can store the one this browser loads
 * (src/lib/offline/engine-cache.ts). Fails the build if either binary is missing.
 */
function engineKeeper(): Plugin {
  return {
    name: 'qp-engine-keeper',
    apply: 'build',
    writeBundle(options) {
      const dir = options.dir ?? 'dist';
      const assets = readdirSync(join(dir, 'assets')).map((f) => `assets/${f}`);
      let found: { webgpu: string; wasm: string };
      try {
        found = findEngineBinaries(assets);
      } catch (e) {
        throw new Error(`the build has ${(e as Error).message}`, { cause: e });
      }
      const files = { ...found, cacheName: ENGINE_CACHE };
      writeFileSync(join(dir, ENGINE_KEEPER_FILE), engineKeeperScript(files));
    },
  };
}

/**
 * The service worker (vite-plugin-pwa's generateSW: Workbox, not hand-written). It
 * precaches the app shell and the engine's .js, and keeps the one engine .wasm this browser
 * loads (engineKeeper above), so a reload works offline; models and images live in
 * IndexedDB, never here, and
 * it leaves every other request alone: the dev server's /shared-data/, mirror folders and
 * cross-origin mirrors reach the network untouched, so downloads are verified as sent.
 * site.json goes to the network first (a teacher's new mirror is seen at once) and falls
 * back to its last copy offline. A new version waits for the user ('prompt'; src/pwa.ts).
 */
const serviceWorker = VitePWA({
  registerType: 'prompt',
  injectRegister: false,
  manifest: false,
  filename: 'sw.js',
  workbox: {
    globPatterns: ['**/*.{js,css,html,wasm,svg}'],
    // each browser needs one of the engine's two .wasm builds: the installing worker stores
    // that one (ENGINE_KEEPER_FILE), the route below serves it and keeps any other it is asked for
    globIgnores: ['mirror/**', 'qp-mirror/**', 'assets/ort-wasm-simd-threaded*.wasm', ENGINE_KEEPER_FILE],
    importScripts: [ENGINE_KEEPER_FILE],
    navigateFallback: 'index.html',
    navigateFallbackDenylist: [/\/shared-data\//, /\/qp-mirror\//, /\/mirror\//, /\.(json|onnx|jpe?g|png)$/i],
    // A first install does not take over open pages: in Firefox ESR a page whose run was
    // starting its engine when the new worker claimed it hung (repeated first visits: every
    // run of 3 hung at its second with the claim, none of 9 without; docs/hosting.md). The
    // page the worker installed from is served by it from its next load on; an update still
    // moves open pages over.
    clientsClaim: false,
    cleanupOutdatedCaches: true,
    runtimeCaching: [
      {
        // names carry Vite's content hash: a kept binary never goes stale, a new version's is
        // another entry, and the oldest beyond two (one per build) are dropped
        urlPattern: ({ url, sameOrigin }) => sameOrigin && /\/ort-wasm-simd-threaded[^/]*\.wasm$/.test(url.pathname),
        handler: 'CacheFirst',
        options: { cacheName: ENGINE_CACHE, expiration: { maxEntries: 2 }, cacheableResponse: { statuses: [200] } },
      },
      {
        urlPattern: ({ url, sameOrigin }) => sameOrigin && url.pathname.endsWith('/site.json'),
        handler: 'NetworkFirst',
        options: { cacheName: 'qp-site-config', networkTimeoutSeconds: 5 },
      },
    ],
  },
  devOptions: { enabled: false },
});

// Mirrors: public/site.json for the build and preview, QP_MIRROR for dev and preview; the
// origins of plain-http ones join connect-src (security-headers.ts).
const site = siteMirrors(import.meta.dirname);
const dev = devMirrorList(process.env.QP_MIRROR);

export default defineConfig({
  plugins: [
    svelte(),
    sharedData(),
    devMirrors(process.env.QP_MIRROR),
    sitePolicy(site.connect),
    engineKeeper(),
    serviceWorker,
  ],
  worker: { format: 'es' },
  // Cross-origin isolation (wasm threads) and the strict CSP on dev *and* preview servers.
  server: { headers: securityHeaders({ dev: true, connect: dev.connect }) },
  preview: { headers: securityHeaders({ connect: [...site.connect, ...dev.connect] }) },
  // ORT's bundle locates its .wasm and its pthread worker script relative to its own
  // module URL: pre-bundling would move it. The .wasm is imported with `?url` in
  // src/lib/engine/browser.ts, so Vite serves it in dev and emits it in the build.
  optimizeDeps: {
    exclude: ['onnxruntime-web'],
    // the workers' dependencies too: found only when a run starts a worker, they would make
    // the dev server re-optimize and reload the page under a student's first run
    entries: ['index.html', 'workers/*.worker.ts'],
  },
  build: { target: 'es2022', chunkSizeWarningLimit: 1500 },
});
