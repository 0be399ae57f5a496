/**
 * The units block-wise reconstruction optimises (ptq/units.ts), on the exact architectures
 * of the model builders (BatchNorm folded, as the pipeline quantizes them): MobileNet-V2's
 * inverted residual blocks, ResNet-18's basic blocks (with and without a projection
 * shortcut), EfficientNet-Lite0's blocks, and one unit per weight layer for AdaRound.
 */
import { describe, expect, it } from 'vitest';
import { buildEfficientNetLite0, buildMobileNetV2, buildResNet18 } from '../../src/lib/models/builders.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { type Graph, makeGraph, makeNode, makeTensor, makeValueInfo } from '../../src/lib/onnx/ir.ts';
import { parseModel } from '../../src/lib/onnx/model.ts';
import { findQuantPoints } from '../../src/lib/onnx/placement.ts';
import { blockUnits, layerUnits } from '../../src/lib/ptq/units.ts';

const ACADEMIC = { conv: true, gemm: true, add: false, pool: false, concat: false, modelInput: false };

function model(bytes: Uint8Array): Graph {
  return foldBatchNorm(parseModel(bytes)).graph;
}

describe('reconstruction units', () => {
  it('MobileNet-V2: three-layer blocks and inverted residuals, each the span between two cuts', () => {
    const g = model(buildMobileNetV2());
    const points = findQuantPoints(g, ACADEMIC);
    const units = blockUnits(g, points.weights);
    // stem + first block (3 layers), 16 more inverted residual blocks, head conv + classifier
    expect(units).toHaveLength(18);
    expect(units.map((u) => u.layers.length)).toEqual([...new Array(17).fill(3), 2]);
    // every weight layer is in exactly one unit, in network order
    expect(units.flatMap((u) => u.layers.map((l) => l.node))).toEqual(points.weights.map((p) => p.node));
    const residual = units.filter((u) =>
      u.nodes.some((n) => n.opType === 'Add' && n.inputs.length === 2 && !g.initializers.has(n.inputs[1])),
    );
    expect(residual).toHaveLength(10);
    // consecutive units meet: each starts where the previous ended
    for (let i = 1; i < units.length; i++) expect(units[i].input).toBe(units[i - 1].output);
    expect(units[0].input).toBe('input');
    expect(units.at(-1)!.output).toBe('logits');
    expect(units.every((u) => !u.skipped)).toBe(true);
  });

  it('ResNet-18: the stem, eight basic blocks (four with a projection shortcut) and the classifier; the max-pool is no unit', () => {
    const g = model(buildResNet18());
    const points = findQuantPoints(g, ACADEMIC);
    const units = blockUnits(g, points.weights);
    expect(units.map((u) => u.layers.length)).toEqual([1, 2, 2, 3, 2, 3, 2, 3, 2, 1]);
    expect(units.flatMap((u) => u.nodes).some((n) => n.opType === 'MaxPool')).toBe(false);
    expect(units[1].input).not.toBe(units[0].output);
    expect(units.every((u) => !u.skipped)).toBe(true);
  });

  it('EfficientNet-Lite0: every layer lands in a unit the backward pass can handle', () => {
    const g = model(buildEfficientNetLite0());
    const points = findQuantPoints(g, ACADEMIC);
    const units = blockUnits(g, points.weights);
    expect(units.flatMap((u) => u.layers.map((l) => l.node))).toEqual(points.weights.map((p) => p.node));
    expect(units.every((u) => !u.skipped && u.layers.length <= 3)).toBe(true);
  });

  it('layer units: each weight node with the activation after it, up to the next quantized tensor', () => {
    const g = model(buildMobileNetV2());
    const points = findQuantPoints(g, ACADEMIC);
    const quantized = new Set(points.activations.map((a) => a.tensor));
    const units = layerUnits(g, points.weights, quantized);
    expect(units.map((u) => u.layers[0].node)).toEqual(points.weights.map((p) => p.node));
    for (const u of units) {
      expect(u.layers).toHaveLength(1);
      expect(u.nodes[0].name).toBe(u.layers[0].node);
      // expand and depthwise convs take their ReLU6 along; projections and the classifier's bias Add stand alone or with the bias
      expect(u.nodes.length).toBeLessThanOrEqual(2);
      if (u.nodes.length === 2) expect(['Clip', 'Add']).toContain(u.nodes[1].opType);
    }
  });

  it('a piece with an op the backward pass lacks keeps its layers, with the reason', () => {
    // x → Conv → Sigmoid → Conv → y: Sigmoid has no backward rule
    const g = makeGraph({
      inputs: [makeValueInfo('x', ['N', 2, 4, 4])],
      outputs: [makeValueInfo('y', ['N', 2, 4, 4])],
      initializers: [makeTensor('w1', [2, 2, 1, 1], [1, 0, 0, 1]), makeTensor('w2', [2, 2, 1, 1], [1, 0, 0, 1])],
      nodes: [
        makeNode('Conv', ['x', 'w1'], ['a'], { kernel_shape: [1, 1] }, { name: 'c1' }),
        makeNode('Sigmoid', ['a'], ['b'], {}, { name: 'sig' }),
        makeNode('Conv', ['b', 'w2'], ['y'], { kernel_shape: [1, 1] }, { name: 'c2' }),
      ],
    });
    const points = findQuantPoints(g, ACADEMIC);
    const units = blockUnits(g, points.weights);
    // the Sigmoid stands between the convs as its own piece: two units of one layer each
    expect(units.map((u) => u.layers.map((l) => l.node))).toEqual([['c1'], ['c2']]);
    expect(units.every((u) => !u.skipped)).toBe(true);
    const withJoin = makeGraph({
      inputs: [makeValueInfo('x', ['N', 2, 4, 4])],
      outputs: [makeValueInfo('y', ['N', 2, 4, 4])],
      initializers: [makeTensor('w1', [2, 2, 1, 1], [1, 0, 0, 1])],
      nodes: [
        makeNode('Conv', ['x', 'w1'], ['a'], { kernel_shape: [1, 1] }, { name: 'c1' }),
        makeNode('Sigmoid', ['a'], ['b'], {}, { name: 'sig' }),
        makeNode('Mul', ['x', 'b'], ['y'], {}, { name: 'gate' }),
      ],
    });
    const gated = blockUnits(withJoin, findQuantPoints(withJoin, ACADEMIC).weights);
    expect(gated).toHaveLength(1);
    expect(gated[0].skipped).toMatch(/Sigmoid/);
  });
});
