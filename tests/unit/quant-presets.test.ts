import { describe, expect, it } from 'vitest';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import { BACKEND_PRESETS } from '../../src/lib/config/presets.ts';
import { defaultConfig } from '../../src/lib/config/resolve.ts';
import { activationSpec, weightSpec } from '../../src/lib/quant/spec.ts';
import { qRange } from '../../src/lib/quant/quantizer.ts';
import { BACKEND_NAMES, OBSERVER_NAMES } from '../../src/lib/quant/types.ts';

describe('BACKEND_PRESETS', () => {
  it('has one well-formed preset per backend', () => {
    expect(Object.keys(BACKEND_PRESETS).sort()).toEqual([...BACKEND_NAMES].sort());
    for (const name of BACKEND_NAMES) {
      const p = BACKEND_PRESETS[name];
      expect(p.name).toBe(name);
      expect(p.label.length).toBeGreaterThan(0);
      expect(p.description).toMatch(/\.$/);
      expect(OBSERVER_NAMES).toContain(p.wObserver);
      expect(OBSERVER_NAMES).toContain(p.aObserver);
      expect(p.placement.conv, `${name} quantizes conv inputs`).toBe(true);
      expect(p.placement.gemm).toBe(true);
      expect([p.wBits, p.aBits]).toEqual([8, 8]);
    }
  });

  it('matches the MQBench ParamsTable schemes', () => {
    const t = BACKEND_PRESETS.tensorrt;
    expect([t.wGranularity, t.wSymmetric, t.wNarrowRange, t.wObserver]).toEqual(['per-channel', true, true, 'minmax']);
    expect([t.aSymmetric, t.aNarrowRange, t.aSign, t.aObserver]).toEqual([true, true, 'signed', 'ema-minmax']);
    const s = BACKEND_PRESETS.snpe;
    expect([s.wGranularity, s.wSymmetric, s.aSymmetric, s.aSign, s.wObserver, s.aObserver]).toEqual([
      'per-tensor',
      false,
      false,
      'unsigned',
      'minmax',
      'ema-minmax',
    ]);
    const c = BACKEND_PRESETS['ppl-cuda'];
    expect([c.wGranularity, c.wSymmetric, c.aSymmetric, c.wObserver, c.aObserver]).toEqual([
      'per-channel',
      false,
      false,
      'minmax',
      'minmax',
    ]);
    const o = BACKEND_PRESETS.openvino;
    expect([o.wGranularity, o.wSymmetric, o.aSymmetric, o.aSign]).toEqual(['per-channel', true, true, 'auto']);
    expect(o.placement.modelInput).toBe(true);
    const v = BACKEND_PRESETS.vitis;
    expect([v.wGranularity, v.wPowerOfTwo, v.aPowerOfTwo, v.wSymmetric, v.aSymmetric]).toEqual([
      'per-tensor',
      true,
      true,
      true,
      true,
    ]);
    const q = BACKEND_PRESETS['onnx-qnn'];
    expect([q.wGranularity, q.wSymmetric, q.aSymmetric, q.wObserver, q.aObserver]).toEqual([
      'per-tensor',
      false,
      false,
      'minmax',
      'minmax',
    ]);
    const g = BACKEND_PRESETS.tengine;
    expect([g.wSymmetric, g.aSymmetric, g.aSign]).toEqual([false, false, 'unsigned']);
    const f = BACKEND_PRESETS.fbgemm;
    expect([f.wGranularity, f.wSymmetric, f.aSymmetric, f.aSign, f.aObserver]).toEqual([
      'per-channel',
      true,
      false,
      'unsigned',
      'mse',
    ]);
    const a = BACKEND_PRESETS.academic;
    expect(a.firstLast8bit).toBe(true);
    expect(a.placement).toEqual({ conv: true, gemm: true, add: false, pool: false, concat: false, modelInput: false });
  });
});

const cfg = (backend: keyof typeof BACKEND_PRESETS): ExperimentConfig => ({
  ...defaultConfig(backend),
  calib: 32,
  eval: 100,
});

describe('weightSpec / activationSpec', () => {
  it('TensorRT weights: per-channel narrow int8 [-127, 127] on the given axis', () => {
    const w = weightSpec(cfg('tensorrt'), 0);
    expect(w).toEqual({
      bits: 8,
      signed: true,
      symmetric: true,
      narrowRange: true,
      granularity: 'per-channel',
      axis: 0,
      powerOfTwo: false,
    });
    expect(qRange(w)).toEqual({ qmin: -127, qmax: 127 });
    expect(weightSpec(cfg('tensorrt'), 1, 4).bits).toBe(4);
  });

  it('per-tensor weights drop the axis; asymmetric weights are unsigned (MQBench quint8)', () => {
    const w = weightSpec(cfg('snpe'), 0);
    expect([w.granularity, w.axis, w.signed, w.symmetric]).toEqual(['per-tensor', -1, false, false]);
    expect(qRange(w)).toEqual({ qmin: 0, qmax: 255 });
  });

  it("aSign 'auto' is unsigned exactly when the range is non-negative (OpenVINO)", () => {
    const c = cfg('openvino');
    expect(qRange(activationSpec(c, true))).toEqual({ qmin: 0, qmax: 255 });
    expect(qRange(activationSpec(c, false))).toEqual({ qmin: -128, qmax: 127 });
    expect(activationSpec(cfg('tensorrt'), true).signed).toBe(true);
    expect(activationSpec(cfg('snpe'), false).signed).toBe(false);
    const a = activationSpec(cfg('vitis'), false, 6);
    expect([a.bits, a.powerOfTwo, a.granularity, a.axis]).toEqual([6, true, 'per-tensor', -1]);
  });
});
