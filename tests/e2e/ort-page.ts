/**
 * onnxruntime-web in headless Chromium outside the app, for what the app's UI cannot show:
 * on which execution provider onnxruntime places each node of a graph (its own verbose
 * placement log, read at session creation) and a graph's raw outputs on WebGPU and on wasm.
 * The page loads the bundle the app's `import('onnxruntime-web/webgpu')` resolves to
 * (dist/ort.webgpu.bundle.min.mjs, with its .wasm) from node_modules, served on 127.0.0.1,
 * and creates sessions with the app's options (src/lib/engine/ort.ts: optimization 'all').
 * Sessions live in the page behind the engine contract (src/lib/engine/types.ts), so
 * experiment/evaluate.ts runs on them unchanged; models and inputs travel over HTTP, outputs
 * back as numbers. Not a test file itself.
 */
import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { EngineSession, SessionOptions } from '../../src/lib/engine/types.ts';
import { CHROMIUM, freePort, ROOT } from './helpers.ts';

const DIST = resolve(ROOT, 'node_modules/onnxruntime-web/dist');
/** what `onnxruntime-web/webgpu` resolves to in a Vite build (package.json exports, "import" → default) */
export const WEBGPU_BUNDLE = 'ort.webgpu.bundle.min.mjs';

export interface Placement {
  /** nodes per execution provider, by op type (ORT's MemcpyFromHost/ToHost included) */
  byProvider: Record<string, Record<string, number>>;
  /** nodes on the CPU provider (copies excluded: ORT places those on the GPU provider) */
  cpuNodes: number;
  /** GPU↔CPU copy nodes ORT inserted around CPU nodes */
  copies: number;
  /** all nodes ORT placed */
  total: number;
}

export interface AdapterInfo {
  found: boolean;
  /** SwiftShader or another software adapter */
  software: boolean;
  text: string;
}

export interface OrtPage {
  page: Page;
  adapter: AdapterInfo;
  /** Where ORT places the nodes of `model` on WebGPU. Throws when the session cannot be created. */
  placement(model: Uint8Array): Promise<Placement>;
  /** A session of `model` on the given provider, living in the page (the engine contract). */
  session(model: Uint8Array, provider: 'webgpu' | 'wasm', options?: SessionOptions): Promise<EngineSession>;
  close(): Promise<void>;
}

/** What the page's WebGPU adapter is; software: SwiftShader or a fallback adapter. */
export async function adapterInfo(page: Page): Promise<AdapterInfo> {
  return page.evaluate(async () => {
    const gpu = (
      navigator as Navigator & {
        gpu?: { requestAdapter(): Promise<null | { info?: Record<string, string>; isFallbackAdapter?: boolean }> };
      }
    ).gpu;
    if (!gpu) return { found: false, software: true, text: 'navigator.gpu is missing' };
    const a = await gpu.requestAdapter();
    if (!a) return { found: false, software: true, text: 'no adapter' };
    const info = a.info ?? {};
    const text =
      ['vendor', 'architecture', 'device', 'description']
        .map((k) => info[k])
        .filter(Boolean)
        .join(' / ') || 'no adapter info';
    return { found: true, software: !!a.isFallbackAdapter || /swiftshader|llvmpipe|software/i.test(text), text };
  });
}

/** Parses ORT's "Node placements" log (session_state.cc) into counts per provider and op type. */
export function parsePlacement(lines: string[]): Placement {
  const byProvider: Record<string, Record<string, number>> = {};
  let current = '';
  let total = 0;
  for (const l of lines) {
    const all = /All nodes placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(l);
    if (all) {
      byProvider[all[1]] = { '(all)': Number(all[2]) };
      total += Number(all[2]);
      continue;
    }
    const some = /Node\(s\) placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(l);
    if (some) {
      current = some[1];
      byProvider[current] ??= {};
      total += Number(some[2]);
      continue;
    }
    const node = /VerifyEachNodeIsAssignedToAnEp\]\s{3}(\w+) \(/.exec(l);
    if (node && current) byProvider[current][node[1]] = (byProvider[current][node[1]] ?? 0) + 1;
  }
  if (total === 0) throw new Error('onnxruntime logged no node placement (is verbose logging on?).');
  const sum = (r: Record<string, number> | undefined, keep: (op: string) => boolean) =>
    Object.entries(r ?? {}).reduce((a, [op, n]) => a + (keep(op) ? n : 0), 0);
  const isCopy = (op: string) => op.startsWith('Memcpy');
  return {
    byProvider,
    cpuNodes: sum(byProvider.CPUExecutionProvider, (op) => !isCopy(op)),
    copies: Object.values(byProvider).reduce((a, r) => a + sum(r, isCopy), 0),
    total,
  };
}

/**
 * The page: ORT loaded as a module, and `qpCreate` making sessions with the options of
 * src/lib/engine/ort.ts (verbose logging when the placement log is wanted).
 */
const PAGE = `<!doctype html><meta charset="utf-8"><title>ort</title>
<script type="module">
import * as ort from '/ort/${WEBGPU_BUNDLE}';
ort.env.wasm.numThreads = 1;
window.ort = ort;
window.qpCreate = async (url, ep, opt, verbose) => {
  ort.env.logLevel = verbose ? 'verbose' : 'error';
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  return ort.InferenceSession.create(bytes, {
    executionProviders: [ep],
    graphOptimizationLevel: opt.optimization ?? 'all',
    logSeverityLevel: verbose ? 0 : 3,
    logVerbosityLevel: 0,
    ...(opt.config ? { extra: opt.config } : {}),
  });
};
window.qpReady = true;
</script>`;

/** Opens Chromium (WebGPU on: SwiftShader where there is no GPU) on a page that has ORT loaded. */
export async function openOrtPage(): Promise<OrtPage> {
  if (!existsSync(resolve(DIST, WEBGPU_BUNDLE))) throw new Error(`${DIST}/${WEBGPU_BUNDLE} is missing: run npm ci.`);
  const blobs = new Map<string, Buffer>();
  let nextBlob = 0;
  const put = (b: Uint8Array | Float32Array) => {
    const id = String(nextBlob++);
    blobs.set(id, Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    return `/blob/${id}`;
  };
  const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', ...isolation });
      return res.end(PAGE);
    }
    const file = path.startsWith('/ort/') ? resolve(DIST, path.slice(5)) : '';
    if (file.startsWith(DIST + '/') && existsSync(file)) {
      const type = file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript';
      res.writeHead(200, { 'Content-Type': type, ...isolation });
      return res.end(readFileSync(file));
    }
    const blob = path.startsWith('/blob/') ? blobs.get(path.slice(6)) : undefined;
    if (blob) {
      blobs.delete(path.slice(6));
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', ...isolation });
      return res.end(blob);
    }
    res.writeHead(404);
    res.end();
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  const { chromium } = await import('playwright-core');
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--no-first-run'],
    });
    const page = await browser.newPage();
    let logs: string[] = [];
    page.on('console', (m) => logs.push(m.text()));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => (window as unknown as { qpReady?: boolean }).qpReady === true);
    const adapter = await adapterInfo(page);

    type Session = {
      inputNames: readonly string[];
      outputNames: readonly string[];
      release(): Promise<void>;
      run(
        f: Record<string, unknown>,
        fetches?: string[],
      ): Promise<Record<string, { data: ArrayLike<number | bigint>; dims: number[] }>>;
    };
    type PageGlobals = {
      ort: { Tensor: new (type: string, data: Float32Array, dims: number[]) => unknown };
      qpCreate(url: string, ep: string, opt: SessionOptions, verbose: boolean): Promise<Session>;
    };
    return {
      page,
      adapter,
      async placement(model) {
        logs = [];
        await page.evaluate(async (url) => {
          const s = await (window as unknown as PageGlobals).qpCreate(url, 'webgpu', {}, true);
          await s.release();
        }, put(model));
        const found = parsePlacement(logs);
        logs = [];
        return found;
      },
      async session(model, provider, options = {}) {
        const { id, inputNames, outputNames } = await page.evaluate(
          async ([url, ep, opt]) => {
            const w = window as unknown as PageGlobals & { qpSessions?: Map<number, Session>; qpNext?: number };
            const s = await w.qpCreate(url, ep, opt, false);
            w.qpSessions ??= new Map();
            w.qpNext = (w.qpNext ?? 0) + 1;
            w.qpSessions.set(w.qpNext, s);
            return { id: w.qpNext, inputNames: [...s.inputNames], outputNames: [...s.outputNames] };
          },
          [put(model), provider, options] as const,
        );
        return {
          inputNames,
          outputNames,
          async run(feeds, fetches) {
            const inputs = Object.entries(feeds).map(([name, t]) => ({ name, url: put(t.data), dims: t.dims }));
            const out = await page.evaluate(
              async ([sid, ins, names]) => {
                const w = window as unknown as PageGlobals & { qpSessions: Map<number, Session> };
                const f: Record<string, unknown> = {};
                for (const i of ins) {
                  const data = new Float32Array(await (await fetch(i.url)).arrayBuffer());
                  f[i.name] = new w.ort.Tensor('float32', data, i.dims);
                }
                const r = await w.qpSessions.get(sid)!.run(f, names ?? undefined);
                return Object.fromEntries(
                  Object.entries(r).map(([k, t]) => [k, { data: Array.from(t.data, Number), dims: [...t.dims] }]),
                );
              },
              [id, inputs, fetches ? [...fetches] : null] as const,
            );
            return Object.fromEntries(
              Object.entries(out).map(([k, t]) => [k, { data: Float32Array.from(t.data), dims: t.dims }]),
            );
          },
          async release() {
            await page.evaluate(async (sid) => {
              const w = window as unknown as { qpSessions: Map<number, Session> };
              await w.qpSessions.get(sid)?.release();
              w.qpSessions.delete(sid);
            }, id);
          },
        };
      },
      async close() {
        await browser?.close();
        server.close();
      },
    };
  } catch (e) {
    await browser?.close();
    server.close();
    throw e;
  }
}
