/**
 * Registers the service worker that vite-plugin-pwa (Workbox) generates at build time: it
 * precaches the app shell and the engine's .js and, as it installs, stores the one engine
 * .wasm this browser loads (lib/offline/engine-cache.ts), so a reload works offline; a new
 * version waits until the user accepts it (registerType 'prompt'). The outcome goes to
 * src/lib/offline/status.ts for the UI. In `npm run dev` the registration does nothing.
 */
import { registerSW } from 'virtual:pwa-register';
import { offlineStatus } from './lib/offline/status.ts';

export function registerServiceWorker(): void {
  if (!('serviceWorker' in navigator)) {
    offlineStatus.set({
      problem: window.isSecureContext
        ? 'This browser does not offer service workers, so the app cannot be kept for offline use.'
        : 'This page is not a secure context (plain http from another machine), so the browser allows no service worker and the app cannot be kept for offline use. Open it over https.',
    });
    return;
  }
  // a page a service worker already serves was cached on an earlier visit
  if (navigator.serviceWorker.controller) offlineStatus.set({ offlineReady: true });
  const updateSW = registerSW({
    immediate: true,
    onOfflineReady: () => offlineStatus.set({ offlineReady: true }),
    onNeedRefresh: () => offlineStatus.set({ updateAvailable: true }),
    onRegisterError: (e: unknown) =>
      offlineStatus.set({
        problem: `The offline cache could not be set up (${(e as Error)?.message ?? String(e)}); the app works online only.`,
      }),
  });
  offlineStatus.setUpdater(() => updateSW(true));
}
