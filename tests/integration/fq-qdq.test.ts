/**
 * The Q/DQ evaluation form of fake-quant graphs (onnx/fq-qdq.ts) against the element-wise
 * form insertFakeQuant builds: bit-identical outputs for every 8-bit flavour, with
 * saturation exercised (the activation ranges clip 20 % of each tensor's extremes), and
 * the chains int8/uint8 cannot express left alone.
 */
import { describe, expect, it } from 'vitest';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import type { FloatTensor } from '../../src/lib/engine/types.ts';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { fakeQuantAsQdq, QDQ_SESSION_CONFIG } from '../../src/lib/onnx/fq-qdq.ts';
import { serializeModel } from '../../src/lib/onnx/model.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import { ALL_PLACEMENT } from '../../src/lib/onnx/placement.ts';
import { simulate } from '../support/export-helpers.ts';
import { mulberry32, randn } from '../support/onnx-helpers.ts';

async function outputs(bytes: Uint8Array, feeds: Record<string, FloatTensor>, qdq: boolean): Promise<Float32Array> {
  const engine = await createNodeWasmEngine(2);
  const s = await engine.createSession(bytes, { optimization: 'all', ...(qdq ? { config: QDQ_SESSION_CONFIG } : {}) });
  try {
    return (await s.run(feeds))['output'].data;
  } finally {
    await s.release();
  }
}

// several inputs, some far outside the calibrated ranges, so every clamp is reached
const feeds = (k: number): Record<string, FloatTensor> => ({
  input: { data: randn(mulberry32(100 + k), 16 * 3 * 8 * 8, 1 + 2 * k), dims: [16, 3, 8, 8] },
});

const cases: [string, Partial<ExperimentConfig>, { replaced: number; clipped: number; kept: number }][] = [
  // TensorRT: narrow signed [-127, 127]; the Relu output needs no Clip, the others do
  [
    'TensorRT, narrow signed symmetric',
    { backend: 'tensorrt', placement: ALL_PLACEMENT },
    { replaced: 5, clipped: 4, kept: 0 },
  ],
  [
    'Academic, asymmetric unsigned',
    { backend: 'academic', placement: ALL_PLACEMENT },
    { replaced: 5, clipped: 0, kept: 0 },
  ],
  [
    'signed asymmetric, full range',
    { backend: 'academic', placement: ALL_PLACEMENT, aSign: 'signed' },
    { replaced: 5, clipped: 0, kept: 0 },
  ],
  [
    'power-of-two scales, narrow',
    { backend: 'tensorrt', placement: ALL_PLACEMENT, aPowerOfTwo: true },
    { replaced: 5, clipped: 4, kept: 0 },
  ],
  [
    'W8A4: 4-bit chains kept',
    { backend: 'academic', placement: ALL_PLACEMENT, aBits: 4, firstLast8bit: false },
    { replaced: 0, clipped: 0, kept: 5 },
  ],
];

describe('fake-quant as QuantizeLinear → DequantizeLinear', () => {
  for (const [label, over, want] of cases) {
    it(`${label}: identical outputs`, async () => {
      const sim = await simulate(resolveConfig(over));
      const { graph, report } = fakeQuantAsQdq(sim.evaluated);
      expect(report).toEqual(want);
      expect(graph.nodes.filter((n) => n.opType === 'QuantizeLinear')).toHaveLength(want.replaced);
      expect(graph.nodes.filter((n) => n.opType === 'Round')).toHaveLength(want.kept);
      const exact = serializeModel(sim.evaluated);
      const qdq = serializeModel(graph);
      for (let k = 0; k < 3; k++) {
        const f = feeds(k);
        const a = await outputs(exact, f, false);
        const b = await outputs(qdq, f, true);
        let diff = 0;
        for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
        expect(diff).toBe(0);
      }
    });
  }

  it('never mutates its input', async () => {
    const sim = await simulate(resolveConfig({ backend: 'tensorrt', placement: ALL_PLACEMENT }));
    const before = sim.evaluated.nodes.map((n) => n.opType).join();
    fakeQuantAsQdq(sim.evaluated);
    expect(sim.evaluated.nodes.map((n) => n.opType).join()).toBe(before);
  });
});
