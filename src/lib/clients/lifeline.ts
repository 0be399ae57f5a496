/**
 * The page's half of crash detection (see workers/lifeline.ts): once the worker holds
 * the Web Lock named after it, the page queues for the same lock; being granted it means
 * the worker is gone. Also reports a worker whose script fails to start (an `error` event
 * before it ever took the lock, e.g. a blocked or missing script).
 * Must not: restart anything itself (the client does) or touch UI state.
 */

/** A lock name unique to one worker instance (also its Worker `name`). */
export function lifelineName(prefix: string): string {
  const rnd = globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  return `${prefix}:${rnd}`;
}

/**
 * Calls `onDead(reason)` once when `worker` dies. Returns a function that stops watching
 * (call it before terminating the worker on purpose). Without Web Locks only start-up
 * failures are reported.
 */
export function watchLifeline(worker: Worker, name: string, onDead: (reason: string) => void): () => void {
  let stopped = false;
  let alive = false;
  const die = (reason: string) => {
    if (stopped) return;
    stopped = true;
    onDead(reason);
  };
  const onError = (e: ErrorEvent) => {
    if (!alive) die(`its script could not start${e.message ? ` (${e.message})` : ''}`);
  };
  worker.addEventListener('error', onError);
  const locks = globalThis.navigator?.locks;
  const stopWaiting = new AbortController();
  if (locks) {
    void (async () => {
      // Wait until the worker holds its lock; only then can being granted it mean death.
      for (let i = 0; !stopped; i++) {
        const state = await locks.query();
        if (state.held?.some((l) => l.name === name)) break;
        await new Promise((r) => setTimeout(r, Math.min(200, 10 * 2 ** i)));
      }
      if (stopped) return;
      alive = true;
      await locks
        .request(name, { signal: stopWaiting.signal }, async () =>
          die('most likely it ran out of memory, or the browser ended it'),
        )
        .catch(() => undefined); // aborted: we stopped watching
    })();
  }
  return () => {
    stopped = true;
    stopWaiting.abort();
    worker.removeEventListener('error', onError);
  };
}
