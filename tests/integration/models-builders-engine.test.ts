// Synthetic exact-architecture builders: parameter counts, structure, and that ORT runs them.
import { describe, expect, it } from 'vitest';
import { buildEfficientNetLite0, buildMobileNetV2, buildResNet18 } from '../../src/lib/models/builders.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';

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

describe('synthetic model builders', () => {
  it('runs in onnxruntime-web (wasm) at batch 1 with finite, non-constant [1,1000] logits', async () => {
    const engine = await createNodeWasmEngine();
    // deterministic pseudo-image in roughly the normalized-ImageNet range
    const input = new Float32Array(3 * 224 * 224);
    for (let i = 0; i < input.length; i++) input[i] = Math.sin(i * 0.37) * 1.5;
    for (const c of cases) {
      const session = await engine.createSession(built.get(c.id)!);
      try {
        const out = await session.run({ input: { data: input, dims: [1, 3, 224, 224] } });
        const logits = out.logits;
        expect(logits.dims, c.id).toEqual([1, 1000]);
        expect(logits.data.every(Number.isFinite), c.id).toBe(true);
        let min = Infinity;
        let max = -Infinity;
        for (const v of logits.data) {
          min = Math.min(min, v);
          max = Math.max(max, v);
        }
        // O(1) activations: spread out but not exploding
        expect(max - min, c.id).toBeGreaterThan(0.5);
        expect(Math.max(-min, max), c.id).toBeLessThan(100);
      } finally {
        await session.release();
      }
    }
  });
});
