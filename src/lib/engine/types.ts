/**
 * The engine contract: the core runs ONNX graphs only through this interface, so the
 * same pipeline works on onnxruntime-web (wasm or WebGPU, browser or Node) and on
 * onnxruntime-node. Nothing outside src/lib/engine imports an onnxruntime package.
 */

export type EngineKind = 'wasm' | 'webgpu' | 'node';

/** A float32 tensor crossing the engine boundary (NCHW or whatever the graph wants). */
export interface FloatTensor {
  data: Float32Array;
  dims: number[];
}

export interface EngineSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /**
   * Run the graph. `fetches` limits which outputs are returned (default: all).
   * Throws QpError('ENGINE_FAILED') with the runtime's message on failure.
   */
  run(feeds: Record<string, FloatTensor>, fetches?: readonly string[]): Promise<Record<string, FloatTensor>>;
  release(): Promise<void>;
}

export interface SessionOptions {
  /** ORT graph optimization level; 'all' unless a caller has a numerical reason. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** onnxruntime session config entries, e.g. { session: { disable_quant_qdq: '1' } } */
  config?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /**
   * Write the graph as onnxruntime optimized it to this file (onnxruntime-node only: the
   * wasm build has no file system to write to). Used to check which kernels a session runs.
   */
  optimizedModelPath?: string;
}

export interface Engine {
  readonly kind: EngineKind;
  /** Human-readable description for reports, e.g. "onnxruntime-web 1.30.0 wasm, 2 threads". */
  readonly description: string;
  createSession(model: Uint8Array, options?: SessionOptions): Promise<EngineSession>;
}
