/**
 * The service worker's engine keeper (src/lib/offline/engine-cache.ts): at install it
 * stores the engine build the quantization worker will load — the WebGPU build where an
 * adapter is granted, the plain wasm build where WebGPU is missing, refuses or throws —
 * never fetches a binary it holds, and never fails the install. Run on a fake service
 * worker scope, both as the function and as the generated script the build writes.
 */
import { describe, expect, it } from 'vitest';
import {
  ENGINE_CACHE,
  ENGINE_WASM,
  engineKeeperScript,
  installEngineKeeper,
  type EngineBinaries,
  type KeeperScope,
} from '../../src/lib/offline/engine-cache.ts';

const FILES: EngineBinaries = {
  webgpu: 'assets/ort-wasm-simd-threaded.asyncify-Ab1.wasm',
  wasm: 'assets/ort-wasm-simd-threaded-Cd2.wasm',
  cacheName: ENGINE_CACHE,
};
const SW = 'https://class.example/playground/sw.js';
const PLAIN = 'https://class.example/playground/assets/ort-wasm-simd-threaded-Cd2.wasm';
const GPU = 'https://class.example/playground/assets/ort-wasm-simd-threaded.asyncify-Ab1.wasm';

interface Fake {
  scope: KeeperScope;
  /** runs the install event; what the keeper handed to waitUntil */
  install(): Promise<unknown>;
  stored: Map<string, Set<string>>;
  added: string[];
  warnings: string[];
}

function fakeScope(gpu: KeeperScope['navigator']['gpu'], opts: { addFails?: boolean; held?: string[] } = {}): Fake {
  const stored = new Map<string, Set<string>>();
  const added: string[] = [];
  const warnings: string[] = [];
  let listener: Parameters<KeeperScope['addEventListener']>[1] | undefined;
  const scope: KeeperScope = {
    location: { href: SW },
    navigator: gpu ? { gpu } : {},
    caches: {
      open: async (name) => {
        const set = stored.get(name) ?? new Set(opts.held ?? []);
        stored.set(name, set);
        return {
          match: async (url: RequestInfo | URL) => (set.has(String(url)) ? new Response('x') : undefined),
          add: async (url: RequestInfo | URL) => {
            added.push(String(url));
            if (opts.addFails) throw new TypeError('Failed to fetch');
            set.add(String(url));
          },
        } as Pick<Cache, 'match' | 'add'>;
      },
    },
    addEventListener: (type, l) => {
      expect(type).toBe('install');
      listener = l;
    },
    console: { warn: (m: string) => warnings.push(m) },
  };
  return {
    scope,
    stored,
    added,
    warnings,
    install: () => {
      let handed: Promise<unknown> | undefined;
      listener!({ waitUntil: (p) => (handed = p) });
      return handed!;
    },
  };
}

const adapter = (a: unknown) => ({ requestAdapter: async () => a });

describe('the engine keeper of the service worker', () => {
  it('stores the WebGPU build where an adapter is granted, resolved against the worker script', async () => {
    const f = fakeScope(adapter({ info: {} }));
    installEngineKeeper(f.scope, FILES);
    expect(await f.install()).toBe(GPU);
    expect(f.added).toEqual([GPU]);
    expect([...f.stored.get(ENGINE_CACHE)!]).toEqual([GPU]);
  });

  it('stores the plain wasm build where WebGPU is missing, grants no adapter, or throws', async () => {
    const cases: KeeperScope['navigator']['gpu'][] = [
      undefined,
      adapter(null),
      { requestAdapter: () => Promise.reject(new Error('GPU process crashed')) },
    ];
    for (const gpu of cases) {
      const f = fakeScope(gpu);
      installEngineKeeper(f.scope, FILES);
      expect(await f.install()).toBe(PLAIN);
      expect(f.added).toEqual([PLAIN]);
      expect(f.warnings).toEqual([]);
    }
  });

  it('fetches nothing when the binary is stored already (a new service worker of the same engine)', async () => {
    const f = fakeScope(undefined, { held: [PLAIN] });
    installEngineKeeper(f.scope, FILES);
    expect(await f.install()).toBe(PLAIN);
    expect(f.added).toEqual([]);
  });

  it('never fails the install: a refused download is a warning naming the file, and the install goes on', async () => {
    const f = fakeScope(undefined, { addFails: true });
    installEngineKeeper(f.scope, FILES);
    await expect(f.install()).resolves.toBeUndefined();
    expect(f.warnings).toEqual([
      `The engine binary ${PLAIN} could not be kept for offline use (TypeError: Failed to fetch); it is kept when a run first loads it.`,
    ]);
  });

  it('the script the build writes runs the same keeper on `self` with the files it names', async () => {
    const script = engineKeeperScript(FILES);
    expect(script).toContain(JSON.stringify(FILES));
    const f = fakeScope(adapter({}));
    new Function('self', script)(f.scope);
    expect(await f.install()).toBe(GPU);
  });

  it('both builds match the pattern the route and the build use, and nothing else does', () => {
    for (const p of [FILES.webgpu, FILES.wasm]) expect(ENGINE_WASM.test(`/${p}`)).toBe(true);
    for (const p of [
      '/assets/mozjpeg_dec-x.wasm',
      '/assets/ort.webgpu.bundle.min-x.js',
      '/assets/ort-wasm-simd-threaded-x.mjs',
    ])
      expect(ENGINE_WASM.test(p)).toBe(false);
  });
});
