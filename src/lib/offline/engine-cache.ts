/**
 * Keeps the one engine binary this browser needs for offline use. onnxruntime-web comes as
 * two .wasm builds (plain wasm, 14 MB; the WebGPU build, 27 MB); precaching both would make
 * every first visit download 41 MB. Instead the service worker caches an engine .wasm the
 * first time the page fetches it (vite.config.ts, runtime cache ENGINE_CACHE), and the page
 * fetches the build its worker will load as soon as the service worker controls it, so a
 * visit that never ran anything still works offline next time.
 * Must not: start the engine, or fetch anything when the binary is cached already.
 */

/** The service worker's runtime cache for the engine's .wasm (vite.config.ts uses the name). */
export const ENGINE_CACHE = 'qp-engine';

/** What `keepEngineOffline` needs from the page (injectable for tests). */
export interface EngineCacheDeps {
  caches: Pick<CacheStorage, 'match'>;
  fetch: (url: string) => Promise<Pick<Response, 'ok' | 'status' | 'arrayBuffer'>>;
}

/**
 * Fetches `url` through the service worker unless its cache holds it already; 'fetched'
 * means the worker's copy is stored now. Throws a sentence naming the status when the host
 * refuses the file.
 */
export async function keepEngineOffline(
  url: string,
  deps: EngineCacheDeps = { caches: globalThis.caches, fetch: (u) => globalThis.fetch(u) },
): Promise<'cached' | 'fetched'> {
  if (await deps.caches.match(url, { cacheName: ENGINE_CACHE })) return 'cached';
  const res = await deps.fetch(url);
  if (!res.ok) throw new Error(`the host answered ${res.status} for the engine file ${url.split('/').pop()}`);
  // read to the end: the service worker stores the response once the whole body went through
  await res.arrayBuffer();
  return 'fetched';
}
