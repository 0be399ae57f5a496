/**
 * The graph the cross-layer-equalization tests share: conv1 → act → depthwise → ReLU → 1×1,
 * with conv1's channel ranges three decades apart, as in MobileNet-V2's depthwise layers.
 */
import { makeGraph, makeNode, makeTensor, makeValueInfo, type Graph } from '../../src/lib/onnx/ir.ts';
import { mulberry32, randn } from './onnx-helpers.ts';

export /**
 * conv1 3→8 (3×3) → act → depthwise 8 (3×3) → ReLU → conv3 8→4 (1×1) → output.
 * conv1's channel i is scaled by 10^((i − 4)/2), so ranges differ by ~3 decades (as in
 * MobileNet-V2's depthwise layers).
 */
function chain(act: 'relu' | 'relu6', seed = 1, k1 = 3): Graph {
  const rng = mulberry32(seed);
  const w1 = randn(rng, 8 * 3 * k1 * k1, 0.3);
  const per = 3 * k1 * k1;
  for (let i = 0; i < 8; i++) for (let j = 0; j < per; j++) w1[i * per + j] *= 10 ** ((i - 4) / 2);
  const pad1 = (k1 - 1) / 2;
  return makeGraph({
    opset: 13,
    inputs: [makeValueInfo('input', ['N', 3, 6, 6])],
    outputs: [makeValueInfo('output', ['N', 4, 6, 6])],
    initializers: [
      makeTensor('w1', [8, 3, k1, k1], w1),
      makeTensor('b1', [8], randn(rng, 8, 0.5, 0.5)),
      makeTensor('w2', [8, 1, 3, 3], randn(rng, 72, 0.5)),
      makeTensor('b2', [8], randn(rng, 8, 0.2)),
      makeTensor('w3', [4, 8, 1, 1], randn(rng, 32, 0.5)),
      makeTensor('b3', [4], randn(rng, 4, 0.1)),
      makeTensor('zero', [], [0]),
      makeTensor('six', [], [6]),
    ],
    nodes: [
      makeNode(
        'Conv',
        ['input', 'w1', 'b1'],
        ['c1'],
        { kernel_shape: [k1, k1], pads: [pad1, pad1, pad1, pad1] },
        { name: 'conv1' },
      ),
      act === 'relu'
        ? makeNode('Relu', ['c1'], ['a1'], {}, { name: 'act1' })
        : makeNode('Clip', ['c1', 'zero', 'six'], ['a1'], {}, { name: 'act1' }),
      makeNode(
        'Conv',
        ['a1', 'w2', 'b2'],
        ['c2'],
        { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 8 },
        { name: 'dw' },
      ),
      makeNode('Relu', ['c2'], ['a2'], {}, { name: 'act2' }),
      makeNode('Conv', ['a2', 'w3', 'b3'], ['output'], { kernel_shape: [1, 1] }, { name: 'conv3' }),
    ],
  });
}

export function f32(g: Graph, name: string): Float32Array {
  return g.initializers.get(name)!.data as Float32Array;
}
