// Synthetic exact-architecture builders: parameter counts, structure, and that ORT runs them.
import { describe, expect, it } from 'vitest';
import onnxProto from 'onnx-proto';
import {
  buildEfficientNetLite0,
  buildMobileNetV2,
  buildResNet18,
  countParams,
  SYNTHETIC_BUILDERS,
  SYNTHETIC_NOTE,
} from '../../src/lib/models/builders.ts';
import { MODEL_REGISTRY } from '../../src/lib/models/registry.ts';
import { validateClassifier } from '../../src/lib/models/validate.ts';
import { parseModel } from '../../src/lib/onnx/model.ts';

const { onnx } = onnxProto;

const cases = [
  {
    id: 'resnet18',
    build: buildResNet18,
    params: 11_689_512,
    ops: { Conv: 20, BatchNormalization: 20, Relu: 17, Add: 8, MaxPool: 1, Clip: 0 },
  },
  {
    id: 'mobilenet-v2',
    build: buildMobileNetV2,
    params: 3_504_872,
    ops: { Conv: 52, BatchNormalization: 52, Clip: 35, Add: 10, Relu: 0 },
  },
  {
    id: 'efficientnet-lite0',
    build: buildEfficientNetLite0,
    params: 4_652_008,
    ops: { Conv: 49, BatchNormalization: 49, Clip: 33, Add: 9, Relu: 0 },
  },
] as const;

// One build per model, shared by the tests below (about 0.3 s in all).
const built = new Map(cases.map((c) => [c.id, c.build(7)]));

function opCounts(bytes: Uint8Array): Record<string, number> {
  const m = onnx.ModelProto.decode(bytes);
  const counts: Record<string, number> = {};
  for (const n of m.graph!.node!) counts[n.opType!] = (counts[n.opType!] ?? 0) + 1;
  return counts;
}

describe('synthetic model builders', () => {
  for (const c of cases) {
    describe(c.id, () => {
      const bytes = built.get(c.id)!;

      it(`has exactly ${c.params.toLocaleString('en')} parameters (PyTorch count) and matches the registry`, () => {
        expect(countParams(bytes)).toBe(c.params);
        expect(MODEL_REGISTRY.find((e) => e.id === c.id)!.params).toBe(c.params);
      });

      it('has the expected ops, explicit BN with non-trivial statistics, opset 13 and a SYNTHETIC label', () => {
        const counts = opCounts(bytes);
        for (const [op, n] of Object.entries(c.ops)) expect(counts[op] ?? 0, op).toBe(n);
        expect(counts.GlobalAveragePool).toBe(1);
        expect(counts.Flatten).toBe(1);
        expect(counts.Gemm).toBe(1);
        const m = onnx.ModelProto.decode(bytes);
        expect(Number(m.opsetImport![0].version)).toBe(13);
        expect(m.docString).toContain(SYNTHETIC_NOTE);
        expect(m.metadataProps!.find((p) => p.key === 'synthetic')!.value).toBe('true');
        // Conv has no bias: BN follows every conv
        for (const n of m.graph!.node!) if (n.opType === 'Conv') expect(n.input!.length).toBe(2);
        const g = parseModel(bytes);
        const bn = g.nodes.find((n) => n.opType === 'BatchNormalization')!;
        const mean = g.initializers.get(bn.inputs[3])!.data as Float32Array;
        const variance = g.initializers.get(bn.inputs[4])!.data as Float32Array;
        expect(mean.some((v) => v !== 0)).toBe(true);
        expect(variance.some((v) => v !== 1)).toBe(true);
      });

      it('validates as a 224×224 NCHW classifier with a symbolic batch and 1000 classes', () => {
        expect(validateClassifier(parseModel(bytes), { labels: 1000 })).toEqual({
          inputName: 'input',
          layout: 'NCHW',
          size: 224,
          channels: 3,
          classes: 1000,
          batch: 'dynamic',
          outputName: 'logits',
          endsWithSoftmax: false,
        });
      });
    });
  }

  it('is deterministic in the seed', () => {
    const a = buildMobileNetV2(7);
    expect(Buffer.from(a).equals(Buffer.from(built.get('mobilenet-v2')!))).toBe(true);
    expect(Buffer.from(buildMobileNetV2(8)).equals(Buffer.from(a))).toBe(false);
    expect(Object.keys(SYNTHETIC_BUILDERS).sort()).toEqual(MODEL_REGISTRY.map((e) => e.id).sort());
  });
});
