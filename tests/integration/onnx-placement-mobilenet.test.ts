import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { PlacementRules } from '../../src/lib/config/types.ts';
import { parseModel } from '../../src/lib/onnx/model.ts';
import { findQuantPoints, ALL_PLACEMENT } from '../../src/lib/onnx/placement.ts';
import { HAVE_MOBILENET, MOBILENET, NO_MOBILENET_MSG } from '../support/onnx-helpers.ts';

const CONV_GEMM: PlacementRules = { conv: true, gemm: true, add: false, pool: false, concat: false, modelInput: false };

describe.skipIf(!HAVE_MOBILENET)(`placement on MobileNet-V2${HAVE_MOBILENET ? '' : ` (${NO_MOBILENET_MSG})`}`, () => {
  it('conv+gemm gives 53 activation and 53 weight points', () => {
    const g = parseModel(new Uint8Array(readFileSync(MOBILENET)));
    // Expected count by reasoning from the graph: MobileNet-V2 has 52 Conv nodes (first conv,
    // 17 inverted-residual blocks of expand-1x1 (absent in block 1) + depthwise 3x3 +
    // project-1x1 = 16·3 + 2 = 50, and the final 1x1 to 1280 channels) and one classifier
    // MatMul. No tensor feeds two convs (there is no shortcut conv; residual tensors feed
    // one conv and one Add), so the 52 conv inputs are distinct; plus the MatMul's flattened
    // input: 53. Every Conv and the MatMul carry an initializer weight: 53 weights.
    const convs = g.nodes.filter((n) => n.opType === 'Conv');
    expect(convs.length).toBe(1 + (16 * 3 + 2) + 1);
    const p = findQuantPoints(g, CONV_GEMM);
    expect(p.activations.length).toBe(53);
    expect(p.weights.length).toBe(53);
    expect(p.activations[0].tensor).toBe('input');
    expect(p.activations[0].firstLayerInput).toBe(true);
    expect(p.activations[52]).toMatchObject({ tensor: 'flat', reasons: ['MatMul input'], lastLayerInput: true });
    expect(p.weights.filter((w) => w.depthwise).length).toBe(17);
    expect(p.weights[52]).toMatchObject({ initializer: 'fc_weight', opType: 'MatMul', axis: 1, isLast: true });
    expect(p.weights.filter((w) => w.isFirst).map((w) => w.node)).toEqual(['Conv_0']);
    expect(p.unquantizedOps).toEqual([]);
    // all rules: + 10 residual-branch Add inputs + the classifier bias Add input + the pool input
    expect(findQuantPoints(g, ALL_PLACEMENT).activations.length).toBe(53 + 10 + 1 + 1);
  });
});
