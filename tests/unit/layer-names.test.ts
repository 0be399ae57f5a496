import { describe, expect, it } from 'vitest';
import { buildEfficientNetLite0, buildMobileNetV2, buildResNet18 } from '../../src/lib/models/builders.ts';
import { parseModel } from '../../src/lib/onnx/model.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { displayName, layerNames } from '../../src/lib/onnx/layer-names.ts';

const labels = (g: ReturnType<typeof parseModel>) => [...layerNames(g).values()];

describe('layerNames', () => {
  it('names MobileNet-V2 by torchvision block index and role', () => {
    const g = parseModel(buildMobileNetV2());
    const ns = labels(g);
    expect(ns).toHaveLength(53);
    expect(ns[0].label).toBe('stem · conv 3×3');
    // features.1: depthwise + project (no expansion, t = 1)
    expect(ns[1].label).toBe('block 1 · depthwise 3×3');
    expect(ns[2].label).toBe('block 1 · project 1×1');
    // features.2: expand, depthwise, project
    expect(ns.slice(3, 6).map((n) => n.label)).toEqual([
      'block 2 · expand 1×1',
      'block 2 · depthwise 3×3',
      'block 2 · project 1×1',
    ]);
    const b16 = ns.filter((n) => n.block === 'block 16').map((n) => n.role);
    expect(b16).toEqual(['expand 1×1', 'depthwise 3×3', 'project 1×1']);
    expect(
      ns
        .filter((n) => n.block.startsWith('block '))
        .map((n) => n.block)
        .at(-1),
    ).toBe('block 17');
    expect(ns.at(-2)!.label).toBe('head · conv 1×1');
    expect(ns.at(-1)!.label).toBe('classifier · fully connected');
    // the ONNX name travels along and every label is unique
    expect(ns[2].onnx).toMatch(/^features\.1\.conv/);
    expect(new Set(ns.map((n) => n.label)).size).toBe(ns.length);
  });

  it('gives the same names after BatchNorm folding', () => {
    const g = parseModel(buildMobileNetV2());
    const before = labels(g).map((n) => n.label);
    const after = labels(foldBatchNorm(g).graph).map((n) => n.label);
    expect(after).toEqual(before);
  });

  it('names ResNet-18 basic blocks with their shortcut', () => {
    const ns = labels(parseModel(buildResNet18()));
    expect(ns[0].label).toBe('stem · conv 7×7');
    expect(ns.filter((n) => n.block === 'block 1').map((n) => n.role)).toEqual(['conv 3×3 #1', 'conv 3×3 #2']);
    // layer2.0: two 3×3 convs and the 1×1 downsample on the skip path
    expect(
      ns
        .filter((n) => n.block === 'block 3')
        .map((n) => n.role)
        .sort(),
    ).toEqual(['conv 3×3 #1', 'conv 3×3 #2', 'shortcut 1×1']);
    expect(ns.filter((n) => n.block.startsWith('block ')).at(-1)!.block).toBe('block 8');
    expect(ns.at(-1)!.label).toBe('classifier · fully connected');
  });

  it('names EfficientNet-Lite0 blocks (kernel sizes from the weights)', () => {
    const ns = labels(parseModel(buildEfficientNetLite0()));
    expect(ns.some((n) => n.role === 'depthwise 5×5')).toBe(true);
    expect(ns.filter((n) => n.block.startsWith('block ')).at(-1)!.block).toBe('block 16');
  });

  it('displays the label with the ONNX name beside it', () => {
    expect(displayName({ label: 'block 16 · project 1×1', onnx: 'Conv_94' }, 'Conv_94')).toBe(
      'block 16 · project 1×1 (Conv_94)',
    );
    expect(displayName(undefined, 'Conv_94')).toBe('Conv_94');
  });
});

describe('layerGraph', () => {
  it('is the MobileNet-V2 chain with its residual joins', async () => {
    const { layerGraph } = await import('../../src/lib/onnx/layer-graph.ts');
    const lg = layerGraph(parseModel(buildMobileNetV2()));
    const layers = lg.nodes.filter((n) => n.kind === 'layer');
    const joins = lg.nodes.filter((n) => n.kind === 'join');
    expect(layers).toHaveLength(53);
    expect(joins).toHaveLength(10); // torchvision MobileNet-V2 has 10 residual adds
    // every join has two inputs: the project layer and the skip
    for (const j of joins) expect(lg.edges.filter((e) => e.to === j.id)).toHaveLength(2);
    expect(lg.edges.filter((e) => e.from === 'input').map((e) => e.to)).toEqual([layers[0].id]);
    expect(lg.edges.filter((e) => e.to === 'output').map((e) => e.from)).toEqual([layers.at(-1)!.id]);
    expect(layers[2].label).toBe('block 1 · project 1×1');
  });
});

describe('graph layout', () => {
  it('places every MobileNet-V2 layer top to bottom with residual branches beside the chain', async () => {
    const { layerGraph } = await import('../../src/lib/onnx/layer-graph.ts');
    const { layoutGraph, normaliseMetric } = await import('../../src/lib/state/graph-layout.ts');
    const view = layerGraph(parseModel(buildMobileNetV2()));
    const lay = layoutGraph(view);
    expect(lay.nodes).toHaveLength(view.nodes.length);
    const y = new Map(lay.nodes.map((n) => [n.id, n.y]));
    // every edge points downwards
    for (const e of view.edges) expect(y.get(e.to)!).toBeGreaterThan(y.get(e.from)!);
    // skip edges go around: more than one distinct x among the nodes
    expect(new Set(lay.nodes.map((n) => Math.round(n.x))).size).toBeGreaterThan(1);
    const n = normaliseMetric(
      new Map([
        ['a', 10],
        ['b', 30],
        ['c', Infinity],
      ]),
      'low',
    );
    expect([n.get('a'), n.get('b'), n.get('c')]).toEqual([0, 1, 1]);
  });
});
