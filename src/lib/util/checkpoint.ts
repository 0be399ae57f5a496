/**
 * Batch-boundary checkpoints for long loops. A worker's `cancel` arrives as a message
 * (a macrotask); a loop of engine calls that resolve as microtasks never lets it in, so
 * an AbortSignal checked there stays unset until the loop ends (cancel "ignored" during
 * evaluation). `checkpoint` yields one macrotask when enough time has passed since the
 * last yield, then throws CANCELLED if the signal fired: a cancel stops the run at the
 * next batch boundary, at a cost of one task switch every ~50 ms.
 */
import { throwIfAborted } from './errors.ts';

/** Longest stretch of work between two yields (ms); a cancel waits at most this plus one batch. */
export const YIELD_EVERY_MS = 50;

let lastYield = 0;

/** One macrotask: setImmediate in Node, a MessageChannel round trip in browsers (no 4 ms clamp). */
export function yieldMacrotask(): Promise<void> {
  const g = globalThis as { setImmediate?: (f: () => void) => unknown };
  if (typeof g.setImmediate === 'function') return new Promise((r) => g.setImmediate!(r));
  if (typeof MessageChannel === 'function') {
    return new Promise((r) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => {
        ch.port1.close();
        r();
      };
      ch.port2.postMessage(null);
    });
  }
  return new Promise((r) => setTimeout(r, 0));
}

/** Let pending messages (a cancel) in, then throw CANCELLED when `signal` is aborted. */
export async function checkpoint(signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal);
  const now = Date.now();
  if (now - lastYield >= YIELD_EVERY_MS) {
    await yieldMacrotask();
    lastYield = Date.now();
  }
  throwIfAborted(signal);
}
