/**
 * The quantization worker's API in-process for integration tests: a fresh fake-IndexedDB
 * store, the given engine for every engine preference, decoding in place, no WebGPU.
 * The caller imports 'fake-indexeddb/auto' first.
 */
import type { Engine } from '../../src/lib/engine/types.ts';
import type { QuantApi } from '../../src/lib/protocol/api.ts';
import { QpStorage } from '../../src/lib/storage/db.ts';
import { createQuantApi } from '../../workers/api.ts';

export function inProcessQuantApi(engine: Engine, storeName: string): QuantApi {
  return createQuantApi({
    storage: new QpStorage(`${storeName}-${Date.now()}`),
    createEngine: async () => ({ engine, kind: 'wasm' }) as never,
    cropper: () => undefined,
    env: async () => ({ webgpu: { available: false }, threads: 1, crossOriginIsolated: false }),
  });
}
