/**
 * Registers the service worker that vite-plugin-pwa (Workbox) generates at build time: it
 * precaches the app shell and the engine's .js, and keeps the one engine .wasm this browser
 * needs (lib/offline/engine-cache.ts), so a reload works offline; a new version waits until
 * the user accepts it (registerType 'prompt'). The outcome goes to
 * src/lib/offline/status.ts for the UI. In `npm run dev` the registration does nothing.
 */
import { registerSW } from 'virtual:pwa-register';
import { keepEngineOffline } from './lib/offline/engine-cache.ts';
import { offlineStatus } from './lib/offline/status.ts';

/** The .wasm of the onnxruntime build the worker will load in this browser (engine/browser.ts). */
async function cacheEngineBinary(): Promise<void> {
  const { detectWebGpu, engineWasmUrl, ortBuildFor } = await import('./lib/engine/browser.ts');
  await keepEngineOffline(engineWasmUrl(ortBuildFor(await detectWebGpu())));
}

export function registerServiceWorker(): void {
  if (!('serviceWorker' in navigator)) {
    offlineStatus.set({
      problem: window.isSecureContext
        ? 'This browser does not offer service workers, so the app cannot be kept for offline use.'
        : 'This page is not a secure context (plain http from another machine), so the browser allows no service worker and the app cannot be kept for offline use. Open it over https.',
    });
    return;
  }
  // offline-ready needs both the precached app and the engine binary this browser uses
  let appCached = false;
  let engineCached = false;
  const ready = () => offlineStatus.set({ offlineReady: appCached && engineCached });
  // a page a service worker already serves was cached on an earlier visit
  if (navigator.serviceWorker.controller) appCached = true;
  const keepEngine = () =>
    void cacheEngineBinary().then(
      () => {
        engineCached = true;
        ready();
      },
      (e: unknown) =>
        offlineStatus.set({
          problem: `The engine could not be kept for offline use (${(e as Error)?.message ?? String(e)}); it is cached when a run first starts it.`,
        }),
    );
  // fetched through the service worker, so only once it controls the page (the first visit:
  // when it activates and claims it)
  if (navigator.serviceWorker.controller) keepEngine();
  else navigator.serviceWorker.addEventListener('controllerchange', keepEngine, { once: true });
  const updateSW = registerSW({
    immediate: true,
    onOfflineReady: () => {
      appCached = true;
      ready();
    },
    onNeedRefresh: () => offlineStatus.set({ updateAvailable: true }),
    onRegisterError: (e: unknown) =>
      offlineStatus.set({
        problem: `The offline cache could not be set up (${(e as Error)?.message ?? String(e)}); the app works online only.`,
      }),
  });
  offlineStatus.setUpdater(() => updateSW(true));
}
