/**
 * The worker's half of crash detection: it holds a Web Lock named after itself (the
 * Worker's `name` option) for as long as it lives. The browser releases a lock when its
 * holder dies — terminated, crashed, or out of memory — which the page's half
 * (src/lib/clients/lifeline.ts) waits for, so a dead worker is noticed at once instead of
 * leaving a call pending for ever.
 * Must not: do anything else; a browser without Web Locks simply gets no lifeline.
 */
export function holdLifeline(name: string = (globalThis as { name?: string }).name ?? ''): void {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (!name || !locks) return;
  // The callback's promise never settles: the lock is released only when this realm ends.
  void locks.request(name, () => new Promise<never>(() => undefined)).catch(() => undefined);
}
