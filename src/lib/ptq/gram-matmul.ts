/**
 * AdaRound's per-step product d·G on the engine: a one-node MatMul model with the layer's
 * Gram matrix as an initializer. For MobileNet-V2's 1×1 convs (K up to 960) this product is
 * nearly all of AdaRound's time, and onnxruntime's SIMD GEMM runs it much faster than a
 * TypeScript loop (docs/reconstruction.md). Float32 is enough: the product only steers a gradient step.
 * Grouped layers (depthwise, K = 9) and small K stay in TypeScript, where a session
 * call would cost more than the product.
 */
import type { Engine } from '../engine/types.ts';
import type { Graph } from '../onnx/ir.ts';
import { makeNode, makeTensor } from '../onnx/ir.ts';
import { serializeModel } from '../onnx/model.ts';
import { jsGramProduct, type GramProduct } from './adaround.ts';
import type { LayerProblem } from './problem.ts';

/** Below this K (or with groups) the TypeScript product is used. */
export const ENGINE_MIN_COLS = 64;

function matmulGraph(p: LayerProblem): Graph {
  const K = p.cols;
  return {
    opset: 13,
    inputs: [{ name: 'd', dtype: 'float32', shape: [p.rows, K] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [p.rows, K] }],
    nodes: [makeNode('MatMul', ['d', 'g'], ['y'], {}, { name: 'product' })],
    initializers: new Map([['g', makeTensor('g', [K, K], Float32Array.from(p.gram.subarray(0, K * K)))]]),
    valueInfo: new Map(),
    meta: {
      irVersion: 8,
      producerName: 'quantization-playground',
      producerVersion: '',
      domain: '',
      modelVersion: 0,
      docString: '',
      opsetImports: [],
      metadataProps: [],
      graphName: 'gram-product',
      graphDocString: '',
    },
  };
}

/**
 * The product for one layer and a release function. Uses the engine when the layer is
 * ungrouped with K ≥ ENGINE_MIN_COLS, TypeScript otherwise.
 */
export async function gramProduct(
  engine: Engine | undefined,
  p: LayerProblem,
): Promise<{ product: GramProduct; release: () => Promise<void> }> {
  if (!engine || p.groups !== 1 || p.cols < ENGINE_MIN_COLS)
    return { product: jsGramProduct(p), release: async () => {} };
  const session = await engine.createSession(serializeModel(matmulGraph(p)));
  const input = new Float32Array(p.rows * p.cols);
  const dims = [p.rows, p.cols];
  return {
    product: async (d, out) => {
      for (let i = 0; i < input.length; i++) input[i] = d[i];
      const y = (await session.run({ d: { data: input, dims } }, ['y'])).y.data;
      for (let i = 0; i < y.length; i++) out[i] = y[i];
    },
    release: () => session.release(),
  };
}
