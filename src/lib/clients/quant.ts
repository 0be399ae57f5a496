/**
 * The UI's handle on the quantization worker: one module worker, wrapped with comlink
 * as the typed QuantApi. Helpers turn callbacks into comlink proxies and move big
 * buffers by transfer. Must not: hold UI state or import components.
 */
import { proxy, transfer, wrap, type Remote } from 'comlink';
import type { QuantApi } from '../protocol/api.ts';

let remote: Remote<QuantApi> | undefined;

/** The worker's API (starts the worker on first use). */
export function quantClient(): Remote<QuantApi> {
  if (!remote) {
    const worker = new Worker(new URL('../../../workers/quant.worker.ts', import.meta.url), { type: 'module', name: 'quant' });
    remote = wrap<QuantApi>(worker);
  }
  return remote;
}

/** A callback the worker can call (comlink proxy). */
export const callback = <T extends (...a: never[]) => unknown>(fn: T) => proxy(fn);

/** Send a byte array to the worker without copying it (the caller's copy is detached). */
export const moveBytes = <T extends object>(value: T, bytes: Uint8Array): T => transfer(value, [bytes.buffer as ArrayBuffer]);
