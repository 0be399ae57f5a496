/**
 * The export layer without an engine (src/lib/export): the QDQ model of a simulated run
 * computes the simulated outputs bit for bit when both are evaluated in TypeScript
 * (tests/support/reference-eval.ts; the same check on onnxruntime is
 * tests/integration/export-qdq.test.ts); corrected biases and rescaled per-channel weights
 * come from the evaluated graph; every range file describes the same numbers; runs the
 * QDQ format cannot express say what and why.
 */
import { describe, expect, it } from 'vitest';
import { strFromU8, unzipSync } from 'fflate';
import { resolveConfig } from '../../src/lib/config/resolve.ts';
import {
  buildQdq,
  CLIP_INT4_NOTE,
  exportRun,
  INT8_WEBGPU_NOTE,
  toDeployable,
  weightsOnGrid,
  zipBundle,
} from '../../src/lib/export/index.ts';
import { parseModel, serializeModel } from '../../src/lib/onnx/model.ts';
import { computeQParams, fakeQuantize } from '../../src/lib/quant/quantizer.ts';
import { QDQ_CASES, input, simulate } from '../support/export-helpers.ts';
import { evalGraph } from '../support/reference-eval.ts';

const feeds = () => {
  const x = input().input;
  return { input: { dims: x.dims, data: Float64Array.from(x.data) } };
};

describe('QDQ export reproduces the simulation (evaluated in TypeScript)', () => {
  for (const [label, over] of QDQ_CASES) {
    it(`${label}: bit-exact outputs, integer weights, one Q/DQ pair per activation point`, () => {
      const cfg = resolveConfig(over);
      const sim = simulate(cfg);
      const { graph } = buildQdq(toDeployable(sim));
      const back = parseModel(serializeModel(graph));
      expect(back.opset).toBe(cfg.wBits === 8 && cfg.aBits === 8 ? 13 : 21);
      for (const w of sim.weights) {
        expect(back.initializers.has(w.point.initializer)).toBe(false);
        const dq = back.nodes.find((n) => n.outputs[0] === w.point.initializer)!;
        expect(dq.opType).toBe('DequantizeLinear');
        expect(back.initializers.get(dq.inputs[0])!.dtype).not.toBe('float32');
        if (w.qparams.axis >= 0) expect(dq.attrs.axis).toBe(w.qparams.axis);
        else expect(dq.attrs.axis).toBeUndefined();
      }
      expect(back.nodes.filter((n) => n.opType === 'QuantizeLinear').length).toBe(sim.activations.length);
      const want = evalGraph(sim.evaluated, feeds()).output;
      const got = evalGraph(back, feeds()).output;
      expect(got.dims).toEqual(want.dims);
      expect(Array.from(got.data)).toEqual(Array.from(want.data));
    });
  }
  it('exports corrected biases and rescaled per-channel weights of the evaluated graph', () => {
    const sim = simulate(resolveConfig({ backend: 'tensorrt' }));
    const w = sim.weights.find((x) => x.point.node === 'conv1')!;
    const dims = sim.graph.initializers.get('w1')!.dims;
    const a = [1.25, 0.7, 1, 2.5];
    const scaled = Float32Array.from(w.values, (v, i) => v * a[Math.floor(i / 27)]);
    const evaluated = {
      ...sim.evaluated,
      initializers: new Map(sim.evaluated.initializers),
      nodes: sim.evaluated.nodes.map((n) => ({ ...n, inputs: [...n.inputs] })),
    };
    evaluated.initializers.set('w1_corrected', { name: 'w1_corrected', dtype: 'float32', dims, data: scaled });
    evaluated.initializers.set('b1_corrected', {
      name: 'b1_corrected',
      dtype: 'float32',
      dims: [4],
      data: Float32Array.of(1, 2, 3, 4),
    });
    const conv = evaluated.nodes.find((n) => n.name === 'conv1')!;
    conv.inputs[1] = 'w1_corrected';
    conv.inputs[2] = 'b1_corrected';
    const d = toDeployable({ ...sim, evaluated });
    const dw = d.weights.find((x) => x.node === 'conv1')!;
    expect(dw.maxAbsError).toBeLessThan(1e-6 * Math.max(...scaled.map(Math.abs)));
    expect(dw.qparams.scale[1]).toBeCloseTo(w.qparams.scale[1] * 0.7, 9);
    expect(
      Array.from(
        d.graph.initializers.get(d.graph.nodes.find((n) => n.name === 'conv1')!.inputs[2])!.data as Float32Array,
      ),
    ).toEqual([1, 2, 3, 4]);
    expect(Array.from(fakeQuantize(scaled, dims, dw.qparams)).every((v, i) => Math.abs(v - scaled[i]) < 1e-6)).toBe(
      true,
    );
  });
});

describe('range files and the bundle', () => {
  it('TensorRT: amax = 127·scale per activation; ranges.json lists every tensor; the zip holds them', () => {
    const cfg = resolveConfig({ backend: 'tensorrt' });
    const sim = simulate(cfg);
    const b = exportRun(sim, 'abcdef0123456789');
    expect(b.folder).toBe('tensorrt-w8a8-abcdef01');
    const files = unzipSync(zipBundle(b));
    expect(Object.keys(files).sort()).toEqual(
      ['README.txt', 'model.int8.onnx', 'model.qdq.onnx', 'ranges.json', 'tensorrt.json'].map(
        (f) => `${b.folder}/${f}`,
      ),
    );
    const trt = JSON.parse(strFromU8(files[`${b.folder}/tensorrt.json`]));
    const ranges = JSON.parse(strFromU8(files[`${b.folder}/ranges.json`]));
    for (const a of sim.activations) {
      expect(trt.tensorrt.blob_range[a.point.tensor]).toBeCloseTo(127 * a.qparams.scale[0], 6);
      expect(ranges.activations[a.point.tensor]).toMatchObject({
        bits: 8,
        signed: true,
        narrow_range: true,
        zero_point: 0,
        axis: null,
        scale: a.qparams.scale[0],
      });
    }
    for (const w of sim.weights)
      expect(ranges.weights[w.point.initializer]).toMatchObject({
        bits: 8,
        axis: 0,
        scale: Array.from(w.qparams.scale),
      });
  });

  it('SNPE: encodings carry bitwidth, min, max, scale and offset = −zero point', () => {
    const sim = simulate(resolveConfig({ backend: 'snpe' }));
    const b = exportRun(sim, '0123456789abcdef');
    const enc = JSON.parse(strFromU8(b.files['snpe_encodings.json']));
    for (const a of sim.activations) {
      const [e] = enc.activation_encodings[a.point.tensor];
      expect(e.bitwidth).toBe(8);
      expect(e.offset).toBe(0 - a.qparams.zeroPoint[0]);
      expect(e.min).toBeCloseTo(e.offset * e.scale, 6);
      expect(e.max).toBeCloseTo((255 + e.offset) * e.scale, 6);
    }
    expect(Object.keys(enc.param_encodings).sort()).toEqual(sim.weights.map((w) => w.point.initializer).sort());
  });

  it('PPL-CUDA: one "tensor: amax" line per activation, amax = the largest |value| represented', () => {
    const sim = simulate(resolveConfig({ backend: 'ppl-cuda' }));
    const b = exportRun(sim, '2222222222222222');
    const lines = strFromU8(b.files['ppl_cuda_clip_ranges.txt']).trim().split('\n');
    expect(lines).toHaveLength(sim.activations.length);
    for (const a of sim.activations) {
      const line = lines.find((l) => l.startsWith(`${a.point.tensor}: `))!;
      const { qmin, qmax, scale, zeroPoint } = a.qparams;
      const want = Math.max(-(qmin - zeroPoint[0]) * scale[0], (qmax - zeroPoint[0]) * scale[0]);
      expect(Number(line.slice(a.point.tensor.length + 2))).toBeCloseTo(want, 5);
    }
    expect(b.files['README.txt'] && strFromU8(b.files['README.txt'])).toMatch(/ppl_cuda_clip_ranges\.txt/);
  });

  for (const relu6Clip of [false, true]) {
    it(`Tengine: "tensor scale zero_point" lines, repeated under the Conv output of a fused Conv+${relu6Clip ? 'ReLU6 (Clip 0..6)' : 'Relu'}`, () => {
      const sim = simulate(resolveConfig({ backend: 'tengine' }), relu6Clip ? { relu6Clip, opset: 10 } : {});
      const b = exportRun(sim, '3333333333333333');
      const rows = strFromU8(b.files['tengine.scale'])
        .trim()
        .split('\n')
        .map((l) => l.split(' '));
      for (const a of sim.activations) {
        const row = rows.find((r) => r[0] === a.point.tensor)!;
        expect(Number(row[1])).toBe(a.qparams.scale[0]);
        expect(Number(row[2])).toBe(a.qparams.zeroPoint[0]);
      }
      // r1 = act(conv1): Tengine fuses the pair and names it by the Conv's output
      const act = sim.graph.nodes.find((n) => n.outputs[0] === 'r1')!;
      const conv = sim.graph.nodes.find((n) => n.outputs[0] === act.inputs[0])!;
      expect(conv.opType).toBe('Conv');
      const r1 = rows.find((r) => r[0] === 'r1')!;
      expect(rows.find((r) => r[0] === conv.outputs[0])).toEqual([conv.outputs[0], r1[1], r1[2]]);
      expect(rows).toHaveLength(sim.activations.length + 1);
    });
  }

  it('Vitis: activation scales under "vitis"', () => {
    const sim = simulate(resolveConfig({ backend: 'vitis' }));
    const b = exportRun(sim, '4444444444444444');
    const v = JSON.parse(strFromU8(b.files['vitis_clip_ranges.json']));
    expect(Object.keys(v.vitis).sort()).toEqual(sim.activations.map((a) => a.point.tensor).sort());
    for (const a of sim.activations) expect(v.vitis[a.point.tensor].scale).toBe(a.qparams.scale[0]);
  });

  it('3-bit activations: no QDQ model, a message saying why, ranges.json still written', () => {
    const sim = simulate(resolveConfig({ backend: 'academic', aBits: 3 }));
    const b = exportRun(sim, 'ffffffffffffffff');
    expect(b.files['model.qdq.onnx']).toBeUndefined();
    expect(b.qdqError?.code).toBe('EXPORT_UNSUPPORTED');
    expect(b.qdqError?.message).toMatch(/4, 8 or 16 bits.*at 3 bits/);
    const ranges = JSON.parse(strFromU8(b.files['ranges.json']));
    expect(Object.values(ranges.activations).some((a) => (a as { bits: number }).bits === 3)).toBe(true);
    expect(ranges.notes.join(' ')).toMatch(/not written/);
  });

  it('int8 activations carry the WebGPU note (measured upstream fault), uint8 ones do not', () => {
    const int8 = exportRun(simulate(resolveConfig({ backend: 'tensorrt' })), '2222222222222222');
    expect(int8.notes).toContain(INT8_WEBGPU_NOTE);
    expect(strFromU8(int8.files['README.txt'])).toContain('int8 activations');
    const uint8 = exportRun(simulate(resolveConfig({ backend: 'academic' })), '3333333333333333');
    expect(uint8.notes).not.toContain(INT8_WEBGPU_NOTE);
  });

  it('4-bit activations read from a Clip name the optimization level onnxruntime loads them at', () => {
    const a4 = resolveConfig(QDQ_CASES.find(([l]) => l.startsWith('W4A4'))![1]);
    const clip = exportRun(simulate(a4, { relu6Clip: true }), '4444444444444444');
    expect(clip.qdqOptimization).toBe('basic');
    expect(clip.notes).toContain(CLIP_INT4_NOTE);
    expect(buildQdq(toDeployable(simulate(a4, { relu6Clip: true }))).clipBeforeInt4).toEqual(['r1']);
    // a ReLU before the 4-bit quantizer, or 8-bit activations after the Clip: no such trap
    for (const b of [
      exportRun(simulate(a4), '5555555555555555'),
      exportRun(simulate({ ...a4, aBits: 8 }, { relu6Clip: true }), '6666666666666666'),
    ]) {
      expect(b.qdqOptimization).toBeUndefined();
      expect(b.notes).not.toContain(CLIP_INT4_NOTE);
    }
  });

  it('a learned activation step is exported as simulated, with the calibrated one beside it in ranges.json', () => {
    const sim = simulate(resolveConfig({ backend: 'academic', wBits: 4, aBits: 4, ptq: 'qdrop' }));
    const [first, ...rest] = sim.activations;
    const qp = first.qparams;
    const learned = Math.fround(qp.scale[0] * 1.25);
    const run = {
      ...sim,
      activations: [
        {
          ...first,
          qparams: { ...qp, scale: Float32Array.of(learned) },
          min: Math.fround((qp.qmin - qp.zeroPoint[0]) * learned),
          max: Math.fround((qp.qmax - qp.zeroPoint[0]) * learned),
          calibrated: { scale: qp.scale[0], min: first.min, max: first.max },
        },
        ...rest,
      ],
    };
    const b = exportRun(run, '7777777777777777');
    const ranges = JSON.parse(strFromU8(b.files['ranges.json']));
    const t = first.point.tensor;
    expect(ranges.activations[t]).toMatchObject({
      scale: learned,
      scale_learned: true,
      calibrated: { scale: qp.scale[0], min: first.min, max: first.max },
    });
    for (const a of rest) {
      expect(ranges.activations[a.point.tensor].scale_learned).toBeUndefined();
      expect(ranges.activations[a.point.tensor].calibrated).toEqual({ min: a.min, max: a.max });
    }
    expect(b.notes).toContain(
      "1 activation scale(s) are the step sizes the reconstruction (qdrop) learned, as simulated; ranges.json keeps calibration's beside them (calibrated.scale).",
    );
    const g = parseModel(b.files['model.qdq.onnx']);
    const q = g.nodes.find((n) => n.opType === 'QuantizeLinear' && n.inputs[0] === t)!;
    expect((g.initializers.get(q.inputs[1])!.data as Float32Array)[0]).toBe(learned);
  });

  it('TensorRT with asymmetric activations: no tensorrt.json, with the reason', () => {
    const sim = simulate(
      resolveConfig({ backend: 'tensorrt', aSymmetric: false, aSign: 'unsigned', aNarrowRange: false }),
    );
    const b = exportRun(sim, '1111111111111111');
    expect(b.files['tensorrt.json']).toBeUndefined();
    expect(b.notes.join(' ')).toMatch(/TensorRT takes symmetric 8-bit/);
  });
});

describe('bad input', () => {
  it('weights off every integer grid are refused by name', () => {
    const qp = computeQParams(
      { min: Float32Array.of(-1), max: Float32Array.of(1) },
      {
        bits: 8,
        signed: true,
        symmetric: true,
        narrowRange: false,
        granularity: 'per-tensor',
        axis: 0,
        powerOfTwo: false,
      },
    );
    const orig = fakeQuantize(Float32Array.of(0.5, -0.25, 0.9), [3], qp);
    expect(() => weightsOnGrid('w', Float32Array.of(0.5, -0.2513, 0.9), [3], qp, orig)).toThrow(
      /"w" are not on an integer grid/,
    );
  });
});
