/**
 * A tiny seeded classifier for browser tests that need the engine but not a real model:
 * Conv(3→8, 3×3, stride 4) → Relu → GlobalAveragePool → Flatten → Gemm(8→1000), input
 * [N, 3, 224, 224]. Runs in well under a second per batch on wasm.
 */
import { makeGraph, makeNode, makeTensor, makeValueInfo } from '../../src/lib/onnx/ir.ts';
import { serializeModel } from '../../src/lib/onnx/model.ts';

export function tinyClassifier(seed = 12345): Uint8Array {
  let a = seed >>> 0;
  const rnd = () => {
    a = (a * 1103515245 + 12345) >>> 0;
    return a / 2 ** 32 - 0.5;
  };
  const w = Float32Array.from({ length: 8 * 3 * 3 * 3 }, rnd);
  const b = Float32Array.from({ length: 8 }, () => rnd() * 0.1);
  const fw = Float32Array.from({ length: 1000 * 8 }, () => rnd() * 4);
  const fb = Float32Array.from({ length: 1000 }, () => rnd() * 0.1);
  const g = makeGraph({
    opset: 13,
    inputs: [makeValueInfo('input', ['N', 3, 224, 224])],
    outputs: [makeValueInfo('logits', ['N', 1000])],
    initializers: [
      makeTensor('w', [8, 3, 3, 3], w),
      makeTensor('b', [8], b),
      makeTensor('fw', [1000, 8], fw),
      makeTensor('fb', [1000], fb),
    ],
    nodes: [
      makeNode('Conv', ['input', 'w', 'b'], ['c'], { kernel_shape: [3, 3], strides: [4, 4], pads: [1, 1, 1, 1] }),
      makeNode('Relu', ['c'], ['r']),
      makeNode('GlobalAveragePool', ['r'], ['p']),
      makeNode('Flatten', ['p'], ['f'], { axis: 1 }),
      makeNode('Gemm', ['f', 'fw', 'fb'], ['logits'], { transB: 1 }),
    ],
  });
  return serializeModel(g);
}
