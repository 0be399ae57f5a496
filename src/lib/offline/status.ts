/**
 * What the service worker means for the user, as a tiny framework-free store the state
 * layer can subscribe to: whether the app is cached for offline use, whether a new version
 * is waiting (the UI shows a notice; `applyUpdate()` switches to it and reloads), and why
 * offline use is unavailable, in a sentence. src/pwa.ts feeds it from vite-plugin-pwa's
 * registration; nothing here knows about service workers.
 */

export interface OfflineStatus {
  /** the app shell and the engine are cached: a reload works with no network */
  offlineReady: boolean;
  /** a newer version is installed and waits for `applyUpdate()` */
  updateAvailable: boolean;
  /** why the app cannot work offline here, a full sentence; undefined when it can */
  problem?: string;
}

export interface OfflineStatusStore {
  get(): OfflineStatus;
  /** calls `fn` now and on every change; returns the unsubscribe function */
  subscribe(fn: (s: OfflineStatus) => void): () => void;
  /** switches to the waiting version (the page reloads); does nothing when none waits */
  applyUpdate(): Promise<void>;
  set(patch: Partial<OfflineStatus>): void;
  /** the registration's update function (vite-plugin-pwa `updateSW`) */
  setUpdater(fn: () => Promise<void>): void;
}

export function createOfflineStatus(): OfflineStatusStore {
  let state: OfflineStatus = { offlineReady: false, updateAvailable: false };
  let updater: (() => Promise<void>) | undefined;
  const subs = new Set<(s: OfflineStatus) => void>();
  return {
    get: () => state,
    subscribe(fn) {
      subs.add(fn);
      fn(state);
      return () => void subs.delete(fn);
    },
    async applyUpdate() {
      if (state.updateAvailable && updater) await updater();
    },
    set(patch) {
      state = { ...state, ...patch };
      for (const fn of subs) fn(state);
    },
    setUpdater(fn) {
      updater = fn;
    },
  };
}

/** The page's one store (src/pwa.ts writes it, the state layer reads it). */
export const offlineStatus = createOfflineStatus();
