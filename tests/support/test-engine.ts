/**
 * The engine for integration tests whose subject is the pipeline's figures on real-size models
 * (MobileNet-V2, the synthetic ResNet-18 / EfficientNet-Lite0), not the engine itself.
 *
 * onnxruntime-node runs the same graphs about four times faster than onnxruntime-web's wasm on
 * this machine class (DEVELOPMENT.md), which is what keeps the integration tier inside CI's
 * budget with full-size MobileNet-V2 figures. The wasm engine — the browser's — is still what
 * the tests about engines, exports and cross-engine agreement use, and what the e2e tier runs.
 * If the native binary cannot load, the wasm engine gives the same decisions, only slower.
 */
import { createNodeNativeEngine, createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import type { Engine } from '../../src/lib/engine/types.ts';

export async function figuresEngine(threads = 2): Promise<Engine> {
  try {
    return await createNodeNativeEngine(threads);
  } catch (e) {
    console.warn(`onnxruntime-node did not load (${(e as Error).message}); using the wasm engine, slower`);
    return createNodeWasmEngine(threads);
  }
}
