/**
 * The QDQ export against the fake-quant simulation it comes from, on onnxruntime: on a
 * small CNN built in code, the exported model (optimizations off, so onnxruntime runs the
 * Q/DQ ops as written) must give the simulated outputs bit for bit for every quantizer
 * flavour (narrow signed, asymmetric unsigned, power of two, 4-bit via opset 21), and
 * within float32 rounding with every optimization on. The same comparison in TypeScript,
 * the range files and the refusals are in tests/unit/export-bundle.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import { buildQdq, toDeployable } from '../../src/lib/export/index.ts';
import { parseModel, serializeModel } from '../../src/lib/onnx/model.ts';
import { QDQ_CASES as cases, input, run, simulate } from '../support/export-helpers.ts';

describe('QDQ export reproduces the simulation', () => {
  for (const [label, over] of cases) {
    it(`${label}: bit-exact outputs, integer weights`, async () => {
      const cfg = resolveConfig(over);
      const sim = await simulate(cfg);
      const { graph } = buildQdq(toDeployable(sim));
      const bytes = serializeModel(graph);
      const back = parseModel(bytes);
      expect(back.opset).toBe(cfg.wBits === 8 && cfg.aBits === 8 ? 13 : 21);
      // no quantized weight is left as a float initializer; each is a DequantizeLinear output
      for (const w of sim.weights) {
        expect(back.initializers.has(w.point.initializer)).toBe(false);
        const dq = back.nodes.find((n) => n.outputs[0] === w.point.initializer)!;
        expect(dq.opType).toBe('DequantizeLinear');
        expect(back.initializers.get(dq.inputs[0])!.dtype).not.toBe('float32');
        if (w.qparams.axis >= 0) expect(dq.attrs.axis).toBe(w.qparams.axis);
      }
      expect(back.nodes.filter((n) => n.opType === 'QuantizeLinear').length).toBe(sim.activations.length);
      const feeds = input();
      const want = await run(serializeModel(sim.evaluated), feeds);
      const got = await run(bytes, feeds);
      let diff = 0;
      for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(want[i] - got[i]));
      expect(diff).toBe(0);
      // with every onnxruntime optimization on (as deployed): the same up to float32 rounding of the
      // unquantized last layer (fused MatMul+Add); a quantized bias would move it by ~s_x·s_w
      const fused = await run(bytes, feeds, 'all');
      let fdiff = 0;
      for (let i = 0; i < want.length; i++) fdiff = Math.max(fdiff, Math.abs(want[i] - fused[i]));
      expect(fdiff).toBeLessThan(1e-6 * (1 + Math.max(...Array.from(want, Math.abs))));
    });
  }
});
