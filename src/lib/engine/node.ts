/**
 * Engines for Node (CLI, tests). Default: onnxruntime-web's wasm build, bit-identical
 * to the browser's wasm engine, so a CLI run reproduces a shared URL's numbers.
 * Optional: onnxruntime-node (faster, slightly different numerics; docs/performance.md).
 */
import { availableParallelism } from 'node:os';
import { QpError } from '../util/errors.ts';
import { createOrtEngine, type OrtModule } from './ort.ts';
import type { Engine } from './types.ts';

let wasmEngine: Engine | undefined;

/** onnxruntime-web wasm in Node. Thread count is fixed at the first session (ORT rule). */
export async function createNodeWasmEngine(threads = Math.min(4, availableParallelism())): Promise<Engine> {
  if (wasmEngine) return wasmEngine;
  const ort = (await import('onnxruntime-web')) as unknown as OrtModule & { env: { wasm: { numThreads?: number } } };
  ort.env.wasm.numThreads = threads;
  const version = (ort.env.versions?.web as string | undefined) ?? '';
  wasmEngine = createOrtEngine(ort, {
    kind: 'wasm',
    executionProviders: ['wasm'],
    description: `onnxruntime-web ${version} wasm, ${threads} threads`.replace('  ', ' '),
  });
  return wasmEngine;
}

/** onnxruntime-node, if installed (optional dependency). */
export async function createNodeNativeEngine(threads = Math.min(4, availableParallelism())): Promise<Engine> {
  let ort: OrtModule;
  try {
    ort = (await import('onnxruntime-node')) as unknown as OrtModule;
  } catch {
    throw new QpError(
      'ARG_INVALID',
      'onnxruntime-node is not installed. Run `ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node`, or use the default wasm engine.',
    );
  }
  return createOrtEngine(ort, {
    kind: 'node',
    sessionOptions: { intraOpNumThreads: threads, interOpNumThreads: 1 },
    description: `onnxruntime-node, ${threads} threads`,
  });
}

export async function createNodeEngine(kind: 'wasm' | 'node' = 'wasm', threads?: number): Promise<Engine> {
  return kind === 'node' ? createNodeNativeEngine(threads) : createNodeWasmEngine(threads);
}
