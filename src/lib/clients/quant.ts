/**
 * The UI's handle on the quantization worker: one module worker, wrapped with comlink
 * as the typed QuantApi. Helpers turn callbacks into comlink proxies and move big
 * buffers by transfer.
 *
 * The worker is supervised: when it dies (terminated, crashed, out of memory; noticed
 * through its lifeline lock), every call still waiting on it answers at once with a
 * WORKER_CRASHED error instead of hanging, `onWorkerCrash` listeners are told, and the
 * next call starts a fresh worker. What the dead worker had loaded (model, images) is
 * gone; what it had stored in IndexedDB is not.
 * Must not: hold UI state or import components.
 */
import { proxy, transfer, wrap, type Remote } from 'comlink';
import type { QuantApi } from '../protocol/api.ts';
import type { ErrorInfo, Result } from '../util/errors.ts';
import { lifelineName, watchLifeline } from './lifeline.ts';

interface Running {
  worker: Worker;
  remote: Remote<QuantApi>;
  api: Remote<QuantApi>;
  stopWatching: () => void;
  /** resolves with the crash error when this worker dies */
  dead: Promise<ErrorInfo>;
}

let current: Running | undefined;
/** resolves a worker's `dead` promise when it is stopped on purpose (stopWorker) */
const stopped = new WeakMap<Running, (e: ErrorInfo) => void>();
const crashListeners = new Set<(e: ErrorInfo) => void>();

function crashError(reason: string): ErrorInfo {
  return {
    code: 'WORKER_CRASHED',
    message: `The computation worker stopped unexpectedly (${reason}); a fresh one has been started, your stored runs and cached files are kept, and you can run again.`,
    userError: true,
  };
}

const testHooksOn = () => typeof location !== 'undefined' && new URLSearchParams(location.search).has('test-hooks');

function start(): Running {
  // workers/test-hooks.ts listens only in a worker named quant-test:…
  const name = lifelineName(testHooksOn() ? 'quant-test' : 'quant');
  const worker = new Worker(new URL('../../../workers/quant.worker.ts', import.meta.url), { type: 'module', name });
  const remote = wrap<QuantApi>(worker);
  let onDead!: (e: ErrorInfo) => void;
  const dead = new Promise<ErrorInfo>((r) => (onDead = r));
  // Every method answers with the worker's Result or, if the worker dies first, WORKER_CRASHED.
  const api = new Proxy(remote, {
    get(target, key) {
      const method = (target as unknown as Record<PropertyKey, unknown>)[key];
      if (typeof key !== 'string' || key === 'then' || typeof method !== 'function') return method;
      return (...args: unknown[]) =>
        Promise.race([
          (method as (...a: unknown[]) => Promise<unknown>)(...args),
          dead.then((error) => (key === 'cancel' ? undefined : ({ ok: false, error } satisfies Result<never>))),
        ]);
    },
  });
  const run: Running = { worker, remote, api, dead, stopWatching: () => undefined };
  stopped.set(run, onDead);
  run.stopWatching = watchLifeline(worker, name, (reason) => {
    const error = crashError(reason);
    if (current === run) current = undefined; // the next call starts a fresh worker
    onDead(error);
    worker.terminate(); // a half-dead worker (failed start) must not linger
    for (const l of crashListeners) l(error);
  });
  return run;
}

/** The worker's API (starts the worker on first use, and again after a crash). */
export function quantClient(): Remote<QuantApi> {
  current ??= start();
  return current.api;
}

/**
 * Ends the worker now because the user cancelled and it did not stop by itself in time
 * (a stage that never reaches a batch boundary). Its waiting calls answer CANCELLED; the
 * crash listeners are not told (nothing failed), so the caller reloads what it needs.
 * Returns false when no worker runs.
 */
export function stopWorker(): boolean {
  const run = current;
  if (!run) return false;
  current = undefined;
  run.stopWatching();
  run.worker.terminate();
  stopped.get(run)?.({ code: 'CANCELLED', message: 'The run was cancelled.', userError: true });
  return true;
}

/** Be told when the worker dies (after its pending calls have answered WORKER_CRASHED). Returns an unsubscribe. */
export function onWorkerCrash(listener: (e: ErrorInfo) => void): () => void {
  crashListeners.add(listener);
  return () => crashListeners.delete(listener);
}

/**
 * Test hooks, installed only when the page URL has `?test-hooks`: e2e tests kill the
 * worker the way a crash would (terminate() without telling the client) and make the
 * worker lose its WebGPU device.
 */
export function installTestHooks(): void {
  if (typeof window === 'undefined' || !testHooksOn()) return;
  (window as unknown as { __qpTest: unknown }).__qpTest = {
    terminateWorker: () => {
      if (!current) return false;
      current.worker.terminate();
      return true;
    },
    /** destroy the worker's WebGPU device (workers/test-hooks.ts); resolves 'lost' or why not */
    loseWebGpuDevice: () =>
      new Promise<string>((resolve) => {
        const channel = new BroadcastChannel('qp-test-hooks');
        channel.onmessage = (e: MessageEvent<{ kind?: string; ok?: string }>) => {
          if (e.data?.kind !== 'webgpu-device-lost') return;
          channel.close();
          resolve(String(e.data.ok));
        };
        channel.postMessage({ kind: 'lose-webgpu-device' });
      }),
  };
}

/** A callback the worker can call (comlink proxy). */
export const callback = <T extends (...a: never[]) => unknown>(fn: T) => proxy(fn);

/** Send a byte array to the worker without copying it (the caller's copy is detached). */
export const moveBytes = <T extends object>(value: T, bytes: Uint8Array): T =>
  transfer(value, [bytes.buffer as ArrayBuffer]);
