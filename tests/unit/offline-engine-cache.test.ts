import { describe, expect, it } from 'vitest';
import { ENGINE_CACHE, keepEngineOffline, type EngineCacheDeps } from '../../src/lib/offline/engine-cache.ts';

const URL_ = 'https://site.example/assets/ort-wasm-simd-threaded-AbC123.wasm';

/** A page whose service-worker cache holds `cached` and whose host answers `status`. */
function page(cached: string[], status = 200) {
  const calls = { match: [] as { url: string; cacheName?: string }[], fetch: [] as string[], read: 0 };
  const deps: EngineCacheDeps = {
    caches: {
      match: async (req, opts) => {
        const url = String(req);
        calls.match.push({ url, cacheName: opts?.cacheName });
        return cached.includes(url) ? new Response('') : undefined;
      },
    },
    fetch: async (url) => {
      calls.fetch.push(url);
      return {
        ok: status >= 200 && status < 300,
        status,
        arrayBuffer: async () => {
          calls.read++;
          return new ArrayBuffer(4);
        },
      };
    },
  };
  return { deps, calls };
}

describe('keepEngineOffline', () => {
  it('fetches the binary once and reads it to the end when the cache lacks it', async () => {
    const { deps, calls } = page([]);
    expect(await keepEngineOffline(URL_, deps)).toBe('fetched');
    expect(calls.match).toEqual([{ url: URL_, cacheName: ENGINE_CACHE }]);
    expect(calls.fetch).toEqual([URL_]);
    expect(calls.read).toBe(1);
  });

  it('fetches nothing when the service worker kept it on an earlier visit', async () => {
    const { deps, calls } = page([URL_]);
    expect(await keepEngineOffline(URL_, deps)).toBe('cached');
    expect(calls.fetch).toEqual([]);
  });

  it("names the host's status and the file when the host refuses it, and reads nothing", async () => {
    const { deps, calls } = page([], 404);
    await expect(keepEngineOffline(URL_, deps)).rejects.toThrow(
      'the host answered 404 for the engine file ort-wasm-simd-threaded-AbC123.wasm',
    );
    expect(calls.read).toBe(0);
  });
});
