/**
 * Browser only: a small pool of Web Workers that decode and preprocess images in parallel
 * (a Cropper for prepareCrops), sized to the cores.
 *
 * Why: decoding is the longest wait of a first run (~1,000 JPEGs); one worker per spare core
 * divides it. Each decode worker runs the same decodeImage + preprocessToCrop as Node, so the
 * crops are identical to the in-thread path.
 * Must not: be imported by Node code (it creates Workers), or lose a QpError's code on the
 * way back (errors cross postMessage as {code, message} and are rebuilt here).
 */
import type { Cropper } from './crops.ts';
import type { PreprocessSpec } from './types.ts';
import { QpError, type ErrorCode } from '../util/errors.ts';

export interface DecodeRequest {
  id: number;
  bytes: Uint8Array;
  name: string;
  spec: PreprocessSpec;
}
export type DecodeReply =
  { id: number; crop: Uint8Array } | { id: number; error: { code: ErrorCode; message: string } };

/** Workers for a machine with `cores` logical cores: leave one for the page/ORT, at most 4. */
export function decodePoolSize(cores: number | undefined): number {
  const c = Number.isFinite(cores) && (cores as number) > 0 ? Math.floor(cores as number) : 2;
  return Math.max(1, Math.min(4, c - 1));
}

export function createDecodePool(
  size = decodePoolSize(globalThis.navigator?.hardwareConcurrency),
): Cropper & { terminate(): void } {
  const workers = Array.from(
    { length: size },
    (_, i) =>
      new Worker(new URL('../../../workers/decode.worker.ts', import.meta.url), {
        type: 'module',
        name: `decode-${i}`,
      }),
  );
  const pending = new Map<number, { resolve: (c: Uint8Array) => void; reject: (e: unknown) => void; worker: number }>();
  const load = new Array<number>(size).fill(0);
  let nextId = 0;
  workers.forEach((w, wi) => {
    w.onmessage = (ev: MessageEvent<DecodeReply>) => {
      const r = ev.data;
      const p = pending.get(r.id);
      if (!p) return;
      pending.delete(r.id);
      load[wi]--;
      if ('crop' in r) p.resolve(r.crop);
      else p.reject(new QpError(r.error.code, r.error.message));
    };
    w.onerror = (ev) => {
      // a crashed worker fails what it held; the run reports those images as unreadable
      for (const [id, p] of pending) {
        if (p.worker !== wi) continue;
        pending.delete(id);
        load[wi]--;
        p.reject(
          new QpError(
            'INTERNAL',
            `A decode worker failed (${ev.message || 'no message'}). Reload the page and try again.`,
          ),
        );
      }
    };
  });
  return {
    concurrency: size * 2,
    crop(bytes: Uint8Array, name: string, spec: PreprocessSpec): Promise<Uint8Array> {
      let wi = 0;
      for (let i = 1; i < size; i++) if (load[i] < load[wi]) wi = i;
      const id = nextId++;
      load[wi]++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject, worker: wi });
        // copy: the caller's bytes may be a view the data set still holds
        const own = bytes.slice();
        workers[wi].postMessage({ id, bytes: own, name, spec } satisfies DecodeRequest, [own.buffer]);
      });
    },
    terminate() {
      for (const w of workers) w.terminate();
      for (const p of pending.values()) p.reject(new QpError('CANCELLED', 'Decoding was stopped.'));
      pending.clear();
    },
  };
}

let shared: (Cropper & { terminate(): void }) | undefined;

/** One pool per page/worker, created on first use; undefined where Workers do not exist (Node, tests). */
export function sharedDecodePool(): Cropper | undefined {
  if (typeof Worker === 'undefined') return undefined;
  shared ??= createDecodePool();
  return shared;
}
